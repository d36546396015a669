import dgram from 'node:dgram';
import { connectPeerPair } from '../../clients/webrtc-pair.ts';
import { startSignalingServer } from '../../servers/webrtc/index.ts';
import type { HandshakeRow, HandshakeRows } from './types.ts';
import { round } from '../../core/stats.ts';

interface Datagram {
  from: number;
  /** RFC 7983 demultiplexing by the first byte: 0-3 STUN, 20-63 DTLS; for DTLS, 22 handshake, 20 CCS, 23 data. */
  kind: 'stun' | 'dtls-handshake' | 'dtls-data' | 'other';
}

function kindOf(first: number): Datagram['kind'] {
  if (first <= 3) return 'stun';
  if (first === 22 || first === 20 || first === 21) return 'dtls-handshake';
  if (first === 23) return 'dtls-data';
  return 'other';
}

/** Flights: runs of datagrams of one kind sent by the same side, in the order they left. */
function flights(log: Datagram[], kind: Datagram['kind']): number {
  let n = 0;
  let last: number | undefined;
  for (const d of log) {
    if (d.kind !== kind) continue;
    if (d.from !== last) n++;
    last = d.from;
  }
  return n;
}

/**
 * The WebRTC row: two werift peers on loopback, from the offer to an open data channel. The datagrams both peers send
 * are counted as they leave (a hook on dgram's send, restored after), sorted into STUN, DTLS handshake and DTLS
 * application data (SCTP, then DCEP), and their flights turned into round trips; signaling adds its own round trip
 * through the server (offer out, answer back).
 */
const rows: HandshakeRows = async (ctx) => {
  const server = await ctx.start(startSignalingServer({ tracer: ctx.tracer }));
  const log: Datagram[] = [];
  let recording = true;
  const original = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
    const msg = args[0];
    if (recording && Buffer.isBuffer(msg) && msg.length > 0) {
      let from = -1;
      try {
        from = this.address().port;
      } catch {
        // not bound yet
      }
      log.push({ from, kind: kindOf(msg[0]!) });
    }
    return (original as (...a: unknown[]) => void).apply(this, args);
  } as typeof original;
  ctx.defer(() => (dgram.Socket.prototype.send = original));
  const pair = await connectPeerPair(server.signalUrl, 'handshakes', (a) => a.createChannel('chat'), { tracer: ctx.tracer });
  ctx.defer(() => pair.close());
  await Promise.all([pair.a.channel('chat'), pair.b.channel('chat')]);
  recording = false;
  dgram.Socket.prototype.send = original;

  const stun = flights(log, 'stun');
  const dtls = flights(log, 'dtls-handshake');
  const sctp = flights(log, 'dtls-data');
  const a = pair.a;
  const ms = a.marks['channel-open']! - a.marks['offer-created']!;
  // Flights alternate between the sides: two flights make a round trip (a last half round trip counts as one).
  const rt = (f: number): number => Math.ceil(f / 2);
  const row: HandshakeRow = {
    handshake: 'WebRTC data channel (werift ↔ werift, signaling over ws)',
    roundTrips: 1 + rt(stun) + rt(dtls) + rt(sctp),
    ms: round(ms, 1),
    steps: `offer → answer via the server (1) → ICE: ${log.filter((d) => d.kind === 'stun').length} STUN datagrams in ${stun} flights → DTLS: ${dtls} flights (after werift's 100 ms wait) → SCTP + DCEP: ${sctp} flights`,
  };
  ctx.claim(
    'WebRTC: ICE checks, a DTLS handshake and SCTP all ran before the data channel opened, each seen on the wire',
    stun >= 2 && dtls >= 4 && sctp >= 2,
    `${stun} STUN, ${dtls} DTLS handshake and ${sctp} SCTP flights`,
  );
  return [row];
};

export default rows;
