import { captureAvailable, startCapture } from '../../core/capture/index.ts';
import type { LabContext } from '../../core/lab/index.ts';
import { startTcpRelay } from '../../core/relay.ts';
import { connectTcp, type TcpClient } from '../../clients/tcp.ts';
import { startTcpServer } from '../../servers/tcp.ts';
import type { HandshakeRow } from './types.ts';

/** One-way delay the relay adds, so round trips show up as time: each one costs 2 × this. */
export const ADDED_DELAY_MS = 15;

interface Forwarded {
  conn: number;
  dir: '>' | '<';
  t: number;
  bytes: number;
}

/** Round trips = server flights the client received before its handshake completed (runs of `<` chunks). */
function countFlights(chunks: Forwarded[], until: number): { roundTrips: number; serverBytes: number; steps: string } {
  let flights = 0;
  let serverBytes = 0;
  let last: '>' | '<' | undefined;
  const steps: string[] = [];
  // Only the newest connection through the relay: an earlier one may still be closing.
  const conn = Math.max(...chunks.map((c) => c.conn));
  for (const c of chunks.filter((x) => x.conn === conn)) {
    if (c.t > until) break;
    if (c.dir === '<') serverBytes += c.bytes;
    if (c.dir !== last) {
      if (c.dir === '<') flights++;
      steps.push(c.dir === '>' ? 'C→S' : 'S→C');
      last = c.dir;
    }
  }
  return { roundTrips: flights, serverBytes, steps: steps.join(' ') };
}

async function tcpRow(ctx: LabContext, port: number): Promise<HandshakeRow> {
  const avail = captureAvailable();
  const capture = avail.ok ? await startCapture(`tcp port ${port}`) : undefined;
  if (capture) ctx.defer(() => capture.stop());
  const c = await connectTcp({ port });
  await c.send('x');
  await c.readBytes(1);
  await c.destroy();
  if (!capture) {
    ctx.note(`not observed: the SYN, SYN-ACK, ACK packets themselves (${avail.reason}); TCP connect shown by its time only`);
    return { handshake: 'TCP connect', roundTrips: NaN, ms: c.connectMs, steps: 'connect() resolved (packets not captured)' };
  }
  const packets = await capture.stop();
  const firstData = packets.findIndex((p) => p.payload > 0);
  const before = packets.slice(0, firstData);
  const fromServer = before.filter((p) => p.sport === port).length;
  const steps = before.map((p) => p.flags.join('-')).join(' → ');
  ctx.claim('TCP: one round trip (SYN → SYN-ACK → ACK) before the first data segment', steps === 'SYN → SYN-ACK → ACK' && fromServer === 1, steps);
  return { handshake: 'TCP connect', roundTrips: fromServer, ms: c.connectMs, steps };
}

async function tlsRow(
  ctx: LabContext,
  relayPort: number,
  chunks: Forwarded[],
  version: '1.2' | '1.3',
  session?: Buffer,
): Promise<{ row: HandshakeRow; client: TcpClient; serverBytes: number }> {
  chunks.length = 0;
  const client = await connectTcp({ port: relayPort, tls: { minVersion: version, maxVersion: version, ...(session ? { session } : {}) } });
  const secureAt = performance.now();
  const { roundTrips, serverBytes, steps } = countFlights(chunks, secureAt);
  const resumed = client.tls?.resumed === true;
  const name = `TLS ${version} ${session ? 'resumed' : 'full'}`;
  ctx.claim(`${name}: negotiated TLSv${version}${session ? ', session reused' : ''}`, client.tls?.version === `TLSv${version}` && resumed === Boolean(session), `${client.tls?.version} ${client.tls?.cipher} ${resumed ? 'resumed' : 'full'}`);
  const expected = version === '1.2' && !session ? 2 : 1;
  ctx.claim(`${name}: ${expected} round trip${expected > 1 ? 's' : ''} before application data (after TCP's own)`, roundTrips === expected, `${roundTrips} server flights: ${steps}`);
  ctx.claim(`${name}: took at least ${expected} × 2 × ${ADDED_DELAY_MS} ms added delay`, client.connectMs >= expected * 2 * ADDED_DELAY_MS, `${client.connectMs.toFixed(1)} ms`);
  return { row: { handshake: name, roundTrips, ms: client.connectMs, addedDelayMs: ADDED_DELAY_MS, steps: `${steps} (${serverBytes} B from server)` }, client, serverBytes };
}

/** A TLS session ticket arrives after the handshake (TLS 1.3: after the first exchange): wait for it. */
async function ticketOf(client: TcpClient): Promise<Buffer | undefined> {
  await client.send('ping');
  await client.readBytes(4);
  for (let i = 0; i < 50 && !client.session; i++) await new Promise((r) => setTimeout(r, 10));
  return client.session;
}

/** TCP connect from a capture; TLS 1.2 and 1.3, full and resumed, through a relay that adds delay and counts flights. */
export default async function transportRows(ctx: LabContext): Promise<HandshakeRow[]> {
  const echo = await ctx.start(startTcpServer({}));
  const rows: HandshakeRow[] = [await tcpRow(ctx, echo.port)];

  const tlsEcho = await ctx.start(startTcpServer({ tls: { minVersion: '1.2', maxVersion: '1.3' } }));
  const chunks: Forwarded[] = [];
  const relay = await ctx.start(
    startTcpRelay({
      target: { port: tlsEcho.port },
      delayMs: ADDED_DELAY_MS,
      onForward: (dir, chunk, conn) => chunks.push({ conn, dir, t: performance.now(), bytes: chunk.length }),
    }),
  );
  for (const version of ['1.2', '1.3'] as const) {
    const full = await tlsRow(ctx, relay.port, chunks, version);
    const session = await ticketOf(full.client);
    await full.client.destroy();
    rows.push(full.row);
    if (!session) {
      ctx.note(`not observed: TLS ${version} resumption (the server sent no session ticket)`);
      continue;
    }
    const resumed = await tlsRow(ctx, relay.port, chunks, version, session);
    await resumed.client.destroy();
    rows.push(resumed.row);
    ctx.claim(`TLS ${version} resumed: the server sent fewer bytes (no certificate)`, resumed.serverBytes < full.serverBytes, `${resumed.serverBytes} B vs ${full.serverBytes} B`);
  }
  return rows;
}
