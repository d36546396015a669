// What `wirelab perf` client and server say to each other (issue 17). Not iperf3's protocol: wirelab's own, small.
//
// TCP, on the server's port: every connection starts with one JSON line. `{"op":"start",...}` opens a test (the
// control connection, kept open); `{"op":"data","id":..,"stream":n}` is a data connection of that test, after which
// raw bytes flow (client → server, or server → client with `reverse`); `{"op":"result","id":..}` on the control
// connection asks the server for what it counted, answered with one JSON line.
// UDP, on the same port number: each datagram starts with a 16-byte header (test tag, stream, sequence, send time).

export type PerfProto = 'tcp' | 'udp' | 'ws' | 'http' | 'webrtc';
export const PERF_PROTOS: readonly PerfProto[] = ['tcp', 'udp', 'ws', 'http', 'webrtc'];

export interface StartRequest {
  op: 'start';
  proto: PerfProto;
  streams: number;
  reverse: boolean;
  /** Seconds. */
  time: number;
  /** Bytes per write / datagram / message. */
  len: number;
  /** Bits per second per stream; 0: as fast as it goes. */
  rate: number;
}

/** Limits the server holds a request to (each is a bound on what one client can make it allocate or keep doing). */
export const PERF_LIMITS = { maxStreams: 128, maxSeconds: 3600, maxLen: 16 * 1024 * 1024, maxUdpLen: 65_507 };

/** Why a start request cannot be served, or null. */
export function checkStart(r: Partial<StartRequest>): string | null {
  if (!PERF_PROTOS.includes(r.proto as PerfProto)) return `proto must be one of ${PERF_PROTOS.join(', ')}`;
  if (!(Number.isInteger(r.streams) && r.streams! >= 1 && r.streams! <= PERF_LIMITS.maxStreams)) return `streams must be 1 to ${PERF_LIMITS.maxStreams}`;
  if (!(typeof r.time === 'number' && r.time > 0 && r.time <= PERF_LIMITS.maxSeconds)) return `time must be over 0 and at most ${PERF_LIMITS.maxSeconds} s`;
  const maxLen = r.proto === 'udp' ? PERF_LIMITS.maxUdpLen : PERF_LIMITS.maxLen;
  if (!(Number.isInteger(r.len) && r.len! >= (r.proto === 'udp' ? UDP_HEADER : 1) && r.len! <= maxLen)) return `len must be up to ${maxLen} bytes`;
  if (!(typeof r.rate === 'number' && r.rate >= 0 && Number.isFinite(r.rate))) return 'rate must be a number of bit/s, 0 for unlimited';
  if (typeof r.reverse !== 'boolean') return 'reverse must be true or false';
  return null;
}

/** What the receiving or sending side of one stream counted (the server's side in a result). */
export interface StreamCount {
  bytes: number;
  /** UDP: datagrams received, the highest sequence seen + 1 (so lost = expected - packets), out of order, jitter. */
  packets?: number;
  expected?: number;
  outOfOrder?: number;
  jitterMs?: number;
}

export const UDP_HEADER = 16;

/** tag (u32) stream (u16) pad (u16) seq (u32) send time in µs mod 2^32 (u32). */
export function writeUdpHeader(buf: Buffer, tag: number, stream: number, seq: number, nowUs: number): void {
  buf.writeUInt32BE(tag >>> 0, 0);
  buf.writeUInt16BE(stream, 4);
  buf.writeUInt16BE(0, 6);
  buf.writeUInt32BE(seq >>> 0, 8);
  buf.writeUInt32BE(Math.floor(nowUs) >>> 0, 12);
}

export function readUdpHeader(buf: Buffer): { tag: number; stream: number; seq: number; sentUs: number } | null {
  if (buf.length < UDP_HEADER) return null;
  return { tag: buf.readUInt32BE(0), stream: buf.readUInt16BE(4), seq: buf.readUInt32BE(8), sentUs: buf.readUInt32BE(12) };
}

/** Receiver-side UDP accounting for one stream: RFC 3550's interarrival jitter, loss from sequence numbers. */
export class UdpStreamCounter {
  bytes = 0;
  packets = 0;
  maxSeq = -1;
  outOfOrder = 0;
  jitterUs = 0;
  #lastTransit: number | undefined;

  add(len: number, seq: number, sentUs: number, nowUs: number): void {
    this.bytes += len;
    this.packets++;
    if (seq < this.maxSeq) this.outOfOrder++;
    else this.maxSeq = seq;
    // Both clocks are this machine's (µs mod 2^32): the transit difference is what RFC 3550 needs.
    const transit = (Math.floor(nowUs) >>> 0) - sentUs;
    if (this.#lastTransit !== undefined) this.jitterUs += (Math.abs(transit - this.#lastTransit) - this.jitterUs) / 16;
    this.#lastTransit = transit;
  }

  toJSON(): StreamCount {
    return { bytes: this.bytes, packets: this.packets, expected: this.maxSeq + 1, outOfOrder: this.outOfOrder, jitterMs: +(this.jitterUs / 1000).toFixed(3) };
  }
}

/** Microseconds on this machine's monotonic clock. */
export const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

/** A line of JSON from a socket's first bytes; the rest of the chunk is handed back. */
export function splitFirstLine(buf: Buffer): { line: string; rest: Buffer } | null {
  const nl = buf.indexOf(0x0a);
  if (nl === -1) return null;
  return { line: buf.subarray(0, nl).toString('utf8'), rest: buf.subarray(nl + 1) };
}

/** Longest first line the server reads before giving up on a connection. */
export const MAX_HEADER_BYTES = 4096;

/**
 * Flow control for a WebSocket sender: at most `max` messages handed to ws and not yet written to the socket (their
 * send callbacks), so the sender neither floods memory nor polls bufferedAmount.
 */
export function wsWriter(ws: { send(data: Buffer, cb: (err?: Error) => void): void }, max = 8): { write(b: Buffer): boolean; drained(): Promise<void> } {
  let outstanding = 0;
  let wake: (() => void) | null = null;
  const done = (): void => {
    outstanding--;
    if (outstanding <= max / 2 && wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  return {
    write(b) {
      outstanding++;
      ws.send(b, done);
      return outstanding < max;
    },
    drained: () => (outstanding < max ? Promise.resolve() : new Promise((r) => (wake = r))),
  };
}
