import { createHttpClient } from '../../clients/http.ts';
import { connectWs } from '../../clients/ws.ts';
import type { LabContext } from '../../core/lab/index.ts';
import { startTcpRelay } from '../../core/relay.ts';
import { startHttpServer } from '../../servers/http/index.ts';
import { startWsServer } from '../../servers/ws/index.ts';
import type { HandshakeRow, HandshakeRows } from './types.ts';

/** Added to every chunk in each direction by the relay: one round trip of data costs 2 × this. */
const ONE_WAY_MS = 40;

/** A relay (core/relay.ts) holding every chunk ONE_WAY_MS each way; the TCP handshake with it is not delayed. */
async function delayRelay(ctx: LabContext, targetPort: number): Promise<number> {
  const relay = await ctx.start(startTcpRelay({ target: { port: targetPort }, delayMs: ONE_WAY_MS }));
  return relay.port;
}

const roundTripsOf = (ms: number): number => Math.round(ms / (2 * ONE_WAY_MS));

/** HTTP, HTTPS (TCP + TLS + request) and the WebSocket upgrade, each on a new connection, round trips counted. */
const rows: HandshakeRows = async (ctx) => {
  const http = await ctx.start(startHttpServer({ tracer: ctx.tracer }));
  const https = await ctx.start(startHttpServer({ tracer: ctx.tracer, tls: true, http2: false }));
  const ws = await ctx.start(startWsServer({ tracer: ctx.tracer }));
  const [httpRelay, httpsRelay, wsRelay] = await Promise.all([delayRelay(ctx, http.port), delayRelay(ctx, https.port), delayRelay(ctx, ws.port)]);
  const out: HandshakeRow[] = [];

  const fresh = async (url: string, tls13: boolean): Promise<{ ms: number; rt: number; tlsRt: number }> => {
    const client = await createHttpClient({ tracer: ctx.tracer, tls: tls13 ? { minVersion: '1.3' } : {} });
    try {
      const r = await client.request(url);
      const tcp = r.timing.connectMs ?? 0;
      // What the delayed relay made us wait for, after the undelayed TCP connect: TLS flights, then the request.
      const tlsRt = roundTripsOf(r.timing.tlsMs ?? 0);
      const requestRt = roundTripsOf(r.timing.firstByteMs - tcp - (r.timing.tlsMs ?? 0));
      return { ms: r.timing.firstByteMs, rt: 1 + tlsRt + requestRt, tlsRt };
    } finally {
      await client.close();
    }
  };

  // Warm up (module loading, the JIT, the certificate files) straight to the servers, so only the wire is timed below.
  await fresh(`${http.url}/hello`, false);
  await fresh(`https://localhost:${https.port}/hello`, true);
  const h = await fresh(`http://127.0.0.1:${httpRelay}/hello`, false);
  out.push({ handshake: 'HTTP/1.1 GET (new connection)', roundTrips: h.rt, ms: Math.round(h.ms), addedDelayMs: ONE_WAY_MS, steps: 'SYN → SYN-ACK → ACK, GET → 200' });
  ctx.claim('HTTP/1.1 on a new connection: 2 round trips to the first response byte (TCP, then the request)', h.rt === 2, `counted ${h.rt} in ${Math.round(h.ms)} ms at ${2 * ONE_WAY_MS} ms per round trip`);

  const s = await fresh(`https://localhost:${httpsRelay}/hello`, true);
  out.push({ handshake: 'HTTPS GET, TLS 1.3 (new connection)', roundTrips: s.rt, ms: Math.round(s.ms), addedDelayMs: ONE_WAY_MS, steps: 'SYN → SYN-ACK → ACK, ClientHello → ServerHello…Finished, Finished + GET → 200' });
  ctx.claim('HTTPS with TLS 1.3 on a new connection: 3 round trips (TCP, one TLS flight each way, the request)', s.rt === 3 && s.tlsRt === 1, `counted ${s.rt} (TLS ${s.tlsRt}) in ${Math.round(s.ms)} ms`);

  const started = performance.now();
  const w = await connectWs({ url: `ws://127.0.0.1:${wsRelay}/echo`, tracer: ctx.tracer });
  const wsMs = performance.now() - started;
  await w.send('first frame');
  const firstEcho = await w.next();
  await w.close();
  const wsRt = 1 + roundTripsOf(w.handshake.ms);
  out.push({ handshake: 'WebSocket upgrade (new connection)', roundTrips: wsRt, ms: Math.round(wsMs), addedDelayMs: ONE_WAY_MS, steps: 'SYN → SYN-ACK → ACK, GET Upgrade: websocket → 101 Switching Protocols' });
  ctx.claim('a WebSocket is open after 2 round trips (TCP, then Upgrade → 101), and the accept key matched', wsRt === 2 && w.handshake.acceptMatches && firstEcho.data.toString() === 'first frame',
    `counted ${wsRt} in ${Math.round(wsMs)} ms; Sec-WebSocket-Accept recomputed: ${w.handshake.acceptMatches ? 'match' : 'mismatch'}`);
  return out;
};

export default rows;
