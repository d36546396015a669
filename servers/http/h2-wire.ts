/**
 * HTTP/2's plaintext for the pcapng export. Node's HTTP/2 session reads and writes the TLS socket's native handle, past
 * any JavaScript tap; when a sink wants the bytes on the wire, the session is given a Duplex over the TLS socket
 * instead (Node wraps it in its JS stream socket), so every frame goes through the TLS socket's `data` and `write`,
 * where tapSocket sees it. With no such sink nothing changes. Credentials are masked inside HPACK (below).
 */
import type http from 'node:http';
import type http2 from 'node:http2';
import { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Dir, WireMask } from '../../core/trace/index.ts';

/** The TLS socket under an HTTP/2 session given a plaintext Duplex (its own `socket` has no addresses then). */
const tlsOfSession = new WeakMap<object, tls.TLSSocket>();

/** The socket with the connection's addresses: for HTTP/2 over a plaintext Duplex, the TLS socket under it. */
export function socketOf(req: http.IncomingMessage | http2.Http2ServerRequest): { remoteAddress?: string | undefined; localAddress?: string | undefined; localPort?: number | undefined; encrypted?: boolean } | undefined {
  const session = (req as http2.Http2ServerRequest).stream?.session;
  return (session && tlsOfSession.get(session)) ?? req.socket;
}

/** A Duplex over the TLS socket: what the session writes goes to `s.write`, what `s` reads is pushed to the session. */
function plaintextDuplex(s: tls.TLSSocket): Duplex {
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      s.write(chunk, cb);
    },
    writev(chunks, cb) {
      s.cork();
      for (const c of chunks) s.write(c.chunk as Buffer);
      s.uncork();
      cb();
    },
    read() {
      s.resume();
    },
    final(cb) {
      s.end(cb);
    },
    destroy(err, cb) {
      s.destroy(err ?? undefined);
      cb(err);
    },
  });
  s.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) s.pause();
  });
  s.on('end', () => d.push(null));
  s.on('close', () => d.destroy());
  s.on('error', (err) => d.destroy(err));
  return d;
}

/**
 * Puts `wire` in front of the secure server's HTTP/2 connection listener: for an h2 connection while `wanted()` is
 * true, `wire(s)` runs (tap the TLS socket) and the session gets a plaintext Duplex over it; `session` then names the
 * TLS socket for the 'session' event handler (emitted inside the listener). Other connections pass as they are.
 */
export function tapHttp2(server: http2.Http2SecureServer, wanted: () => boolean, wire: (s: tls.TLSSocket) => void): { pending(): tls.TLSSocket | undefined } {
  const listener = server.listeners('secureConnection')[0] as ((s: unknown) => void) | undefined;
  let pending: tls.TLSSocket | undefined;
  if (!listener) return { pending: () => undefined };
  server.removeListener('secureConnection', listener);
  server.on('secureConnection', (s: tls.TLSSocket) => {
    if (s.alpnProtocol !== 'h2' || !wanted()) return listener.call(server, s);
    wire(s);
    pending = s;
    try {
      listener.call(server, plaintextDuplex(s));
    } finally {
      pending = undefined;
    }
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    if (pending) tlsOfSession.set(session, pending);
  });
  return { pending: () => pending };
}

/** Static table indices (RFC 7541 appendix A) of headers whose value is a credential. */
const SECRET_NAMES = new Set([23, 32, 49, 55]); // authorization, cookie, proxy-authorization, set-cookie

const PREFACE = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/** An HPACK integer with an N-bit prefix at `at`: [value, next offset], or undefined past the end. */
function hpackInt(b: Buffer, at: number, bits: number): [number, number] | undefined {
  if (at >= b.length) return undefined;
  const max = (1 << bits) - 1;
  let v = b[at]! & max;
  let i = at + 1;
  if (v < max) return [v, i];
  for (let m = 0; ; m += 7) {
    if (i >= b.length || m > 28) return undefined;
    const byte = b[i++]!;
    v += (byte & 0x7f) * 2 ** m;
    if ((byte & 0x80) === 0) return [v, i];
  }
}

/**
 * Ranges of `block` (a whole header block) to mask: the value of every literal field whose name is a credential
 * (static index) or not a static index at all (a literal or dynamic-table name: unknown, masked to be safe).
 * Returns [start, end, huffman] triples; stops at the first representation it cannot parse.
 */
function secretValues(block: Buffer): Array<[number, number, boolean]> {
  const out: Array<[number, number, boolean]> = [];
  let i = 0;
  while (i < block.length) {
    const b = block[i]!;
    if (b & 0x80) {
      const n = hpackInt(block, i, 7);
      if (!n) break;
      i = n[1];
      continue;
    }
    if ((b & 0xe0) === 0x20) {
      const n = hpackInt(block, i, 5); // dynamic table size update
      if (!n) break;
      i = n[1];
      continue;
    }
    const bits = b & 0x40 ? 6 : 4;
    const idx = hpackInt(block, i, bits);
    if (!idx) break;
    i = idx[1];
    let secret = idx[0] === 0 || idx[0] > 61 || SECRET_NAMES.has(idx[0]);
    if (idx[0] === 0) {
      const nameLen = hpackInt(block, i, 7);
      if (!nameLen) break;
      i = nameLen[1] + nameLen[0];
      secret = true;
    }
    const len = hpackInt(block, i, 7);
    if (!len || len[1] + len[0] > block.length) break;
    if (secret && len[0] > 0) out.push([len[1], len[1] + len[0], (block[i]! & 0x80) !== 0]);
    i = len[1] + len[0];
  }
  return out;
}

/** N bytes that decode as HPACK Huffman to zeros ('0' is the 5-bit code 00000), padded with ones as RFC 7541 asks. */
function huffmanZeros(n: number): Buffer {
  const bits = n * 8;
  const pad = bits - Math.floor(bits / 5) * 5;
  const out = Buffer.alloc(n);
  if (pad > 0) out[n - 1] = (1 << pad) - 1;
  return out;
}

/**
 * A mask for one HTTP/2 connection's bytes: frames are reassembled per direction and each header block (HEADERS and
 * its CONTINUATIONs) has its credential values overwritten in place (`*`, or Huffman zeros), same length, so the
 * export still decodes. Bytes are held until their frame (or header block) is complete.
 */
export function http2Mask(): WireMask {
  const held: Record<string, Buffer> = {};
  let prefaceLeft = PREFACE;
  return (chunk: Buffer, dir: Dir): Buffer => {
    let buf = held[dir] ? Buffer.concat([held[dir]!, chunk]) : Buffer.from(chunk);
    let start = 0;
    if (dir === '>' && prefaceLeft > 0) {
      const skip = Math.min(prefaceLeft, buf.length);
      prefaceLeft -= skip;
      start = skip;
    }
    let done = start;
    let blockStart = -1;
    const fragments: Array<[number, number]> = [];
    for (let at = start; at + 9 <= buf.length; ) {
      const len = buf.readUIntBE(at, 3);
      const type = buf[at + 3]!;
      const flags = buf[at + 4]!;
      const end = at + 9 + len;
      if (end > buf.length) break;
      if (type === 0x1 || (type === 0x9 && blockStart !== -1)) {
        if (type === 0x1) {
          blockStart = at;
          fragments.length = 0;
        }
        let from = at + 9;
        let to = end;
        if (type === 0x1 && flags & 0x8) {
          to -= buf[from]!;
          from += 1;
        }
        if (type === 0x1 && flags & 0x20) from += 5;
        if (from < to) fragments.push([from, to]);
        if (flags & 0x4) {
          maskBlock(buf, fragments);
          blockStart = -1;
          done = end;
        }
      } else if (blockStart === -1) {
        if (type === 0x0) maskJsonSecrets(buf, at + 9, end);
        done = end;
      }
      at = end;
    }
    const out = buf.subarray(0, done);
    const rest = buf.subarray(done);
    if (rest.length > 0) held[dir] = Buffer.from(rest);
    else delete held[dir];
    buf = out;
    return buf;
  };
}

/** A credential header echoed in a JSON body (/anything, /headers), as the HTTP/1.1 tap's line mask finds it. */
const JSON_SECRET = /("(?:proxy-)?(?:authorization|cookie|set-cookie)"\s*:\s*")((?:[^"\\]|\\.)*)"/gi;

/** Masks credential values echoed in a DATA frame's payload (`buf[from, to)`), in place, same length. */
function maskJsonSecrets(buf: Buffer, from: number, to: number): void {
  const text = buf.toString('latin1', from, to);
  for (const m of text.matchAll(JSON_SECRET)) {
    const start = from + m.index + m[1]!.length;
    buf.fill(0x2a, start, start + m[2]!.length);
  }
}

/** Masks the secret values of the header block made of `fragments` (ranges of `buf`), in place. */
function maskBlock(buf: Buffer, fragments: Array<[number, number]>): void {
  const block = Buffer.concat(fragments.map(([a, b]) => buf.subarray(a, b)));
  const at = (i: number): number => {
    for (const [a, b] of fragments) {
      if (i < b - a) return a + i;
      i -= b - a;
    }
    return -1;
  };
  for (const [s, e, huffman] of secretValues(block)) {
    const fill = huffman ? huffmanZeros(e - s) : Buffer.alloc(e - s, 0x2a);
    for (let i = s; i < e; i++) buf[at(i)] = fill[i - s]!;
  }
}
