/**
 * Socket taps for the pcapng export where a server's own tap cannot see the bytes: a UDP socket (the impairment
 * relay's two legs, werift's ICE sockets: STUN, DTLS, SRTP, SCTP-in-DTLS) and the two TCP legs of the impairment proxy.
 * Each tap is attached only when a sink wants the bytes (`tracer.wire`), and emits `bytes` events carrying the
 * socket's ends (`role`, `conv`, `local`, `remote`) so core/export/pcapng.ts can pair them into conversations.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import { addressOf, endsOf, lineMask, preview, socketEnds, tapSocket, type Dir, type Role, type Tracer, type WireMask } from '../trace/index.ts';

/** Is the socket bound (its local address known)? */
function localOf(socket: dgram.Socket): string | undefined {
  try {
    const a = socket.address();
    return addressOf(a.address, a.port);
  } catch {
    return undefined;
  }
}

/**
 * Traces every datagram `socket` receives and sends as a `bytes` event of `proto` / `cid`, seen from `role` (the
 * server reads `>` and sends `<`); each event carries the ends of its own datagram, so one listening socket serving
 * many peers makes one conversation per peer. A datagram sent before the socket is bound is traced once it is.
 */
export function tapDatagrams(tracer: Tracer, proto: string, cid: string, socket: dgram.Socket, role: Role): void {
  if (!tracer.wire) return;
  const inDir: Dir = role === 'server' ? '>' : '<';
  const outDir: Dir = role === 'server' ? '<' : '>';
  const emit = (dir: Dir, data: Buffer, address: string | undefined, port: number | undefined): void => {
    let local = localOf(socket);
    if (!local) {
      // Node binds an unbound socket at its first send: trace the datagram once the address is known.
      socket.once('listening', () => emit(dir, data, address, port));
      return;
    }
    const remote = addressOf(address, port);
    // A socket bound to the wildcard (werift's) talks to a loopback peer from that loopback address: say so, or the two
    // ends' conversations would not pair.
    if (remote && /^(?:0\.0\.0\.0|\[::\]):/.test(local) && /^(?:127\.|\[::1\])/.test(remote)) local = `${remote.slice(0, remote.lastIndexOf(':'))}${local.slice(local.lastIndexOf(':'))}`;
    tracer.emit(proto, cid, dir, 'bytes', () => ({ summary: `${data.length} B ${preview(data, 32)}`, bytes: data.length, data, ...(remote ? endsOf('udp', role, local, remote) : {}) }));
  };
  socket.prependListener('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => emit(inDir, msg, rinfo.address, rinfo.port));
  const send = socket.send;
  socket.send = function tapped(this: dgram.Socket, msg: unknown, ...rest: unknown[]): void {
    // send(msg, [offset, length,] port, [address,] [callback]); a connected socket: send(msg, [callback]).
    const ranged = typeof rest[0] === 'number' && typeof rest[1] === 'number' && typeof rest[2] === 'number';
    const [port, address] = ranged ? [rest[2], rest[3]] : [rest[0], rest[1]];
    let remote: { address?: string; port?: number } = {};
    if (typeof port === 'number') remote = { port, address: typeof address === 'string' ? address : '127.0.0.1' };
    else {
      try {
        remote = socket.remoteAddress();
      } catch {
        /* not connected: nothing to pair with */
      }
    }
    const parts = Array.isArray(msg) ? msg : [msg];
    let data = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from((p as Uint8Array).buffer, (p as Uint8Array).byteOffset, (p as Uint8Array).byteLength))));
    if (ranged) data = data.subarray(rest[0] as number, (rest[0] as number) + (rest[1] as number));
    emit(outDir, data, remote.address, remote.port);
    return (send as (...a: unknown[]) => void).call(this, msg, ...rest);
  } as dgram.Socket['send'];
}

/**
 * The impairment proxy's two TCP legs: the client's connection to the proxy (the proxy is its server, id `cid`) and
 * the proxy's connection to the upstream server (the proxy is its client, id `cid` + `.up`). What a toxic delayed,
 * cut or held shows in the leg it reached. `makeMask` (one per leg) masks secrets: by default text
 * lines as the servers' taps mask them (AUTH, PASS, LOGIN, Authorization); a binary protocol's server gives its own
 * (the MQTT door's masks the CONNECT password).
 */
export function tapProxyLegs(tracer: Tracer, cid: string, client: net.Socket, upstream: net.Socket, makeMask: () => WireMask = lineMask): void {
  if (!tracer.wire) return;
  const upCid = `${cid}.up`;
  tracer.emit('impair', cid, '*', 'accept', () => ({ summary: `leg client → proxy ${client.remoteAddress}:${client.remotePort}`, ...socketEnds(client, 'server') }));
  tapSocket(tracer, 'impair', cid, client, 'server', makeMask());
  tapSocket(tracer, 'impair', upCid, upstream, 'client', makeMask());
  upstream.once('connect', () => tracer.emit('impair', upCid, '*', 'connected', () => ({ summary: `leg proxy → upstream ${upstream.localPort} → ${upstream.remotePort}`, ...socketEnds(upstream, 'client') })));
}
