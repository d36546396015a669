import type { Socket } from 'node:net';
import { preview } from './hex.ts';
import { redactLine } from './redact.ts';
import type { Dir, Ends, Role, Tracer } from './types.ts';

/** `ip:port`, IPv4-mapped IPv6 addresses written as IPv4; undefined when the socket has no address (closed). */
export function addressOf(address: string | undefined, port: number | undefined): string | undefined {
  if (!address || port === undefined) return undefined;
  const ip = address.startsWith('::ffff:') ? address.slice(7) : address;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The conversation id of a client / server address pair: the same from both ends. */
export function convOf(transport: 'tcp' | 'udp', client: string, server: string): string {
  return `${transport}:${client}>${server}`;
}

/** The ends of `local` / `remote` seen from `role`, as a connect / accept event (or a datagram) carries them. */
export function endsOf(transport: 'tcp' | 'udp', role: Role, local: string, remote: string): Ends {
  const conv = role === 'client' ? convOf(transport, local, remote) : convOf(transport, remote, local);
  return { role, conv, local, remote };
}

/**
 * What a connect / accept event adds to its body so both ends pair: role, conversation, local and remote address.
 * Call it inside the build function (it costs nothing when tracing is off). Empty when the socket has no address.
 */
export function socketEnds(socket: Socket, role: Role): Partial<Ends> {
  const local = addressOf(socket.localAddress, socket.localPort);
  const remote = addressOf(socket.remoteAddress, socket.remotePort);
  return local && remote ? endsOf('tcp', role, local, remote) : {};
}

/** Rewrites bytes of one direction before they are traced; same length in, same length out keeps lengths valid. */
export type WireMask = (chunk: Buffer, dir: Dir) => Buffer;

const LF = 0x0a;

/** A credential header echoed in a JSON body (the HTTP server's /anything, /headers): `"authorization": "..."`. */
const JSON_SECRET = /^(\s*"(?:proxy-)?(?:authorization|cookie|set-cookie)"\s*:\s*")((?:[^"\\]|\\.)*)"/i;

/** Every secret maskLine finds (redactLine's rules, JSON_SECRET) has one of these words: other lines skip both. */
const MAYBE_SECRET = /pass|apop|auth|login|cookie/i;

/** A line's secret part replaced by `*` of the same length (the line's framing and every length field stay valid). */
function maskLine(line: Buffer, all: boolean): Buffer {
  let end = line.length;
  while (end > 0 && (line[end - 1] === LF || line[end - 1] === 0x0d)) end--;
  if (end === 0) return line;
  const text = line.toString('latin1', 0, end);
  let from: number;
  if (!all && !MAYBE_SECRET.test(text)) return line;
  if (all) from = 0;
  else {
    const json = JSON_SECRET.exec(text);
    if (json) {
      end = json[1]!.length + json[2]!.length;
      from = json[1]!.length;
    } else {
      const red = redactLine(text);
      if (red === text) return line;
      from = 0;
      while (from < text.length && red[from] === text[from]) from++;
    }
  }
  const out = Buffer.from(line);
  out.fill(0x2a, from, end);
  return out;
}

/** Options of `lineMask`. */
export interface LineMaskOptions {
  /** Track SASL exchanges (AUTH / AUTHENTICATE answered by `334` or `+`): the lines in between are masked whole. Default true. */
  sasl?: boolean;
  /** A partial line held back past this many bytes is let through as it is. Default 64 KiB. */
  maxLineBytes?: number;
}

/**
 * A mask for a text protocol's bytes (SMTP, IMAP, POP3, FTP, HTTP headers): every line goes through `redactLine`, and
 * the lines of a SASL exchange are masked whole. A chunk ending mid-line keeps the rest until the line is complete,
 * so a secret split over two reads is still found. Returns a function with its own state: one per connection.
 */
export function lineMask(options: LineMaskOptions = {}): (chunk: Buffer, dir: Dir) => Buffer {
  const sasl = options.sasl ?? true;
  const max = options.maxLineBytes ?? 64 * 1024;
  const held: Record<string, Buffer> = {};
  let saslOpen = false;
  let authAsked = false;
  return (chunk, dir) => {
    const prev = held[dir];
    // Whole lines and not one of the words a secret needs: passed as they are (no split, no copy). With SASL off only,
    // since an exchange in progress masks lines whatever they hold.
    if (!sasl && !prev && chunk.length > 0 && chunk[chunk.length - 1] === LF && !MAYBE_SECRET.test(chunk.toString('latin1'))) return chunk;
    const buf = prev ? Buffer.concat([prev, chunk]) : chunk;
    const out: Buffer[] = [];
    let start = 0;
    for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, start)) {
      const line = buf.subarray(start, i + 1);
      start = i + 1;
      if (!sasl) {
        out.push(maskLine(line, false));
        continue;
      }
      const text = line.toString('latin1').trimEnd();
      if (dir === '>') {
        out.push(maskLine(line, saslOpen));
        if (!saslOpen && /^(?:\S+\s+)?(?:AUTH|AUTHENTICATE)\s+\S+/i.test(text)) authAsked = true;
      } else {
        out.push(line);
        if (authAsked && (/^334[ -]/.test(text) || /^\+(?: |$)/.test(text))) saslOpen = true;
        else if (/^\d{3} /.test(text) || /^(?:\S+ )?(?:OK|NO|BAD)\b/.test(text) || /^[+-](?:OK|ERR)\b/.test(text)) {
          saslOpen = false;
          authAsked = false;
        }
      }
    }
    let rest = buf.subarray(start);
    if (rest.length > max) {
      out.push(rest);
      rest = Buffer.alloc(0);
    }
    if (rest.length > 0) held[dir] = Buffer.from(rest);
    else delete held[dir];
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  };
}

/**
 * Traces the bytes a socket reads and writes as `bytes` events (for pcapng export and `--hex`), when a sink wants
 * them. `mask` rewrites secrets first (same length). For TLS, tap the TLS socket: the plaintext is what is traced.
 */
export function tapSocket(tracer: Tracer, proto: string, cid: string, socket: Socket, role: Role, mask?: WireMask): void {
  if (!tracer.wire) return;
  const inDir: Dir = role === 'server' ? '>' : '<';
  const outDir: Dir = role === 'server' ? '<' : '>';
  const emit = (dir: Dir, raw: Buffer): void => {
    const data = mask ? mask(raw, dir) : raw;
    if (data.length === 0) return;
    tracer.emit(proto, cid, dir, 'bytes', () => ({ summary: `${data.length} B ${preview(data, 32)}`, bytes: data.length, data }));
  };
  // First in line, so a read is traced before the answer its own handler writes at once.
  socket.prependListener('data', (chunk: Buffer | string) => emit(inDir, typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk));
  const write = socket.write;
  socket.write = function tapped(this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk === 'string') emit(outDir, Buffer.from(chunk, typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : 'utf8'));
    else if (chunk instanceof Uint8Array) emit(outDir, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Socket['write'];
}
