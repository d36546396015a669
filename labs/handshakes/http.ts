import { createHttpClient } from '../../clients/http.ts';
import { connectWs } from '../../clients/ws.ts';
import type { LabContext } from '../../core/lab/index.ts';
import { startTcpRelay } from '../../core/relay.ts';
import { startHttpServer } from '../../servers/http/index.ts';
import { startWsServer } from '../../servers/ws/index.ts';
import type { HandshakeRow, HandshakeRows } from './types.ts';

/** Added to every chunk in each direction by the relay: one round trip of data costs 2 × this. */
const ONE_WAY_MS = 40;

interface Tap {
  port: number;
  /** Server-to-client flights (runs of chunks with nothing from the client in between) on the newest connection. */
  serverFlights(): number;
}

/**
 * A relay (core/relay.ts) holding every chunk ONE_WAY_MS each way, with a tap on what it forwards. Round trips are
 * counted from the flights it saw, not from time, so a loaded machine cannot change the count; the TCP handshake with
 * the relay is not delayed and counts as the one round trip a connect always takes.
 */
async function delayRelay(ctx: LabContext, targetPort: number): Promise<Tap> {
  const chunks: Array<{ conn: number; dir: '>' | '<' }> = [];
  const relay = await ctx.start(
    startTcpRelay({ target: { port: targetPort }, delayMs: ONE_WAY_MS, onForward: (dir, _chunk, conn) => chunks.push({ conn, dir }) }),
  );
  return {
    port: relay.port,
    serverFlights() {
      const conn = Math.max(0, ...chunks.map((c) => c.conn));
      let flights = 0;
      let last: '>' | '<' | undefined;
      for (const c of chunks) {
        if (c.conn !== conn) continue;
        if (c.dir === '<' && last !== '<') flights++;
        last = c.dir;
      }
      return flights;
    },
  };
}

/** HTTP, HTTPS (TCP + TLS + request) and the WebSocket upgrade, each on a new connection, round trips counted. */
const rows: HandshakeRows = async (ctx) => {
  const http = await ctx.start(startHttpServer({ tracer: ctx.tracer }));
  const https = await ctx.start(startHttpServer({ tracer: ctx.tracer, tls: true, http2: false }));
  const ws = await ctx.start(startWsServer({ tracer: ctx.tracer }));
  const [httpRelay, httpsRelay, wsRelay] = await Promise.all([delayRelay(ctx, http.port), delayRelay(ctx, https.port), delayRelay(ctx, ws.port)]);
  const out: HandshakeRow[] = [];

  const fresh = async (url: string, tls13: boolean, tap?: Tap): Promise<{ ms: number; rt: number; tlsRt: number }> => {
    const client = await createHttpClient({ tracer: ctx.tracer, tls: tls13 ? { minVersion: '1.3' } : {} });
    try {
      const r = await client.request(url);
      // TCP's own round trip, then every flight the server sent: TLS's (if any), then the response.
      const flights = tap?.serverFlights() ?? 0;
      return { ms: r.timing.firstByteMs, rt: 1 + flights, tlsRt: Math.max(0, flights - 1) };
    } finally {
      await client.close();
    }
  };

  // Warm up (module loading, the JIT, the certificate files) straight to the servers, so only the wire is timed below.
  await fresh(`${http.url}/hello`, false);
  await fresh(`https://localhost:${https.port}/hello`, true);
  const h = await fresh(`http://127.0.0.1:${httpRelay.port}/hello`, false, httpRelay);
  out.push({ handshake: 'HTTP/1.1 GET (new connection)', roundTrips: h.rt, ms: Math.round(h.ms), addedDelayMs: ONE_WAY_MS, steps: 'SYN → SYN-ACK → ACK, GET → 200' });
  ctx.claim('HTTP/1.1 on a new connection: 2 round trips to the first response byte (TCP, then the request)', h.rt === 2, `counted ${h.rt} (1 server flight after TCP) in ${Math.round(h.ms)} ms at ${2 * ONE_WAY_MS} ms per round trip`);

  const s = await fresh(`https://localhost:${httpsRelay.port}/hello`, true, httpsRelay);
  out.push({ handshake: 'HTTPS GET, TLS 1.3 (new connection)', roundTrips: s.rt, ms: Math.round(s.ms), addedDelayMs: ONE_WAY_MS, steps: 'SYN → SYN-ACK → ACK, ClientHello → ServerHello…Finished, Finished + GET → 200' });
  ctx.claim('HTTPS with TLS 1.3 on a new connection: 3 round trips (TCP, one TLS flight each way, the request)', s.rt === 3 && s.tlsRt === 1, `counted ${s.rt} (TLS ${s.tlsRt}, from server flights) in ${Math.round(s.ms)} ms`);

  const started = performance.now();
  const w = await connectWs({ url: `ws://127.0.0.1:${wsRelay.port}/echo`, tracer: ctx.tracer });
  const wsMs = performance.now() - started;
  const wsRt = 1 + wsRelay.serverFlights();
  await w.send('first frame');
  const firstEcho = await w.next();
  await w.close();
  out.push({ handshake: 'WebSocket upgrade (new connection)', roundTrips: wsRt, ms: Math.round(wsMs), addedDelayMs: ONE_WAY_MS, steps: 'SYN → SYN-ACK → ACK, GET Upgrade: websocket → 101 Switching Protocols' });
  ctx.claim('a WebSocket is open after 2 round trips (TCP, then Upgrade → 101), and the accept key matched', wsRt === 2 && w.handshake.acceptMatches && firstEcho.data.toString() === 'first frame',
    `counted ${wsRt} in ${Math.round(wsMs)} ms; Sec-WebSocket-Accept recomputed: ${w.handshake.acceptMatches ? 'match' : 'mismatch'}`);
  return out;
};

export default rows;
