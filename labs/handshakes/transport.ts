import { captureAvailable, startCapture } from '../../core/capture/index.ts';
import type { LabContext } from '../../core/lab/index.ts';
import { startTcpRelay } from '../../core/relay.ts';
import { connectTcp, type TcpClient } from '../../clients/tcp.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import type { HandshakeRow } from './types.ts';

/** One-way delay the relay adds, so round trips show up as time: each one costs 2 × this. */
export const ADDED_DELAY_MS = 15;

interface Forwarded {
  conn: number;
  dir: '>' | '<';
  t: number;
  bytes: number;
  /** How long the relay actually held this chunk (never less than ADDED_DELAY_MS). */
  heldMs: number;
}

/**
 * Round trips = server flights the client received before its handshake completed (runs of `<` chunks). `heldMs` is
 * the delay the relay actually applied on that path: each crossing (a run of chunks one way) waited for the one
 * before it, so the handshake cannot have taken less than the sum of each crossing's shortest hold.
 */
function countFlights(chunks: Forwarded[], until: number): { roundTrips: number; crossings: number; heldMs: number; serverBytes: number; steps: string } {
  let flights = 0;
  let serverBytes = 0;
  let last: '>' | '<' | undefined;
  const steps: string[] = [];
  const holds: number[] = [];
  // Only the newest connection through the relay: an earlier one may still be closing.
  const conn = Math.max(...chunks.map((c) => c.conn));
  for (const c of chunks.filter((x) => x.conn === conn)) {
    if (c.t > until) break;
    if (c.dir === '<') serverBytes += c.bytes;
    if (c.dir !== last) {
      if (c.dir === '<') flights++;
      steps.push(c.dir === '>' ? 'C→S' : 'S→C');
      holds.push(c.heldMs);
      last = c.dir;
    } else {
      holds[holds.length - 1] = Math.min(holds[holds.length - 1]!, c.heldMs);
    }
  }
  return { roundTrips: flights, crossings: holds.length, heldMs: holds.reduce((a, b) => a + b, 0), serverBytes, steps: steps.join(' ') };
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
  const { roundTrips, crossings, heldMs, serverBytes, steps } = countFlights(chunks, secureAt);
  const resumed = client.tls?.resumed === true;
  const name = `TLS ${version} ${session ? 'resumed' : 'full'}`;
  ctx.claim(`${name}: negotiated TLSv${version}${session ? ', session reused' : ''}`, client.tls?.version === `TLSv${version}` && resumed === Boolean(session), `${client.tls?.version} ${client.tls?.cipher} ${resumed ? 'resumed' : 'full'}`);
  const expected = version === '1.2' && !session ? 2 : 1;
  ctx.claim(`${name}: ${expected} round trip${expected > 1 ? 's' : ''} before application data (after TCP's own)`, roundTrips === expected, `${roundTrips} server flights: ${steps}`);
  // connectMs is rounded to the microsecond: allow that rounding, nothing more.
  ctx.claim(
    `${name}: the handshake waited out the relay's hold on each of its ${2 * expected} crossings`,
    crossings === 2 * expected && heldMs >= crossings * ADDED_DELAY_MS && client.connectMs + 0.001 >= heldMs,
    `${client.connectMs.toFixed(1)} ms ≥ ${heldMs.toFixed(1)} ms held on ${crossings} crossings (${ADDED_DELAY_MS} ms asked each)`,
  );
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
      onForward: (dir, chunk, conn, heldMs) => chunks.push({ conn, dir, t: performance.now(), bytes: chunk.length, heldMs }),
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
