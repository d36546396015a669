/**
 * The inputs the fuzz suite throws at every port of `wirelab up`: all drawn from a seeded Prng, so a failing run
 * replays from its seed (WIRELAB_FUZZ_SEED). A case is bytes and a way of delivering them; which cases a port gets
 * depends only on what the registry says about it (proto, paths), so a new server joins with no extra code.
 */
import { Prng } from '../../core/impair/prng.ts';

export interface Endpoint {
  name: string;
  proto: string;
  host: string;
  port: number;
  url?: string;
  paths?: string[];
}

export interface Case {
  /** What kind of input this is, for the report: 'raw', 'ws-unmasked', 'http-cl-te'... */
  family: string;
  /** Written in order, `gapMs` apart (a slow writer has many small chunks). */
  chunks: Buffer[];
  gapMs: number;
  /** After the last chunk: 'fin' half-closes (half-open connection), 'rst' resets, 'hold' waits for the server. */
  then: 'fin' | 'rst' | 'hold';
  /** Over TLS (a real handshake first); otherwise the bytes go on the raw TCP connection, even on a TLS port. */
  tls: boolean;
  /** Offer h2 by ALPN (HTTPS ports). */
  alpn?: string[];
}

/** A TLS port: the registry's proto names it with the secure scheme (https, wss, ftps, smtps, imaps, pop3s...). */
export function isTls(e: Endpoint): boolean {
  return e.proto.length > 2 && e.proto.endsWith('s') && e.proto !== 'dns';
}

/** The protocol under the TLS layer: https → http, wss → ws, imaps → imap. */
export function baseProto(e: Endpoint): string {
  return isTls(e) ? e.proto.slice(0, -1) : e.proto;
}

const b = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s);

export class CaseGenerator {
  constructor(readonly rng: Prng) {}

  pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(0, xs.length - 1)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.rng.int(0, 255);
    return out;
  }

  /** Mostly small, sometimes large: the sizes where parsers break (0, 1, around limits). */
  size(): number {
    const r = this.rng.next();
    if (r < 0.5) return this.rng.int(1, 64);
    if (r < 0.85) return this.rng.int(65, 4096);
    if (r < 0.97) return this.rng.int(4097, 70_000);
    return this.rng.int(1024 * 1024, 1024 * 1024 + 4096);
  }

  /** Flips, inserts, deletes, duplicates, truncates, and splices NUL / bare CR / bare LF into a valid input. */
  mutate(valid: Buffer): Buffer {
    let buf = Buffer.from(valid);
    const ops = this.rng.int(1, 4);
    for (let i = 0; i < ops; i++) {
      const at = buf.length === 0 ? 0 : this.rng.int(0, buf.length - 1);
      switch (this.rng.int(0, 6)) {
        case 0:
          if (buf.length) buf[at] = buf[at]! ^ (1 << this.rng.int(0, 7));
          break;
        case 1:
          buf = Buffer.concat([buf.subarray(0, at), this.bytes(this.rng.int(1, 16)), buf.subarray(at)]);
          break;
        case 2:
          buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + this.rng.int(1, 16)))]);
          break;
        case 3: {
          const piece = buf.subarray(at, at + this.rng.int(1, 64));
          buf = Buffer.concat([buf.subarray(0, at), piece, piece, buf.subarray(at)]);
          break;
        }
        case 4:
          buf = buf.subarray(0, at);
          break;
        default:
          buf = Buffer.concat([buf.subarray(0, at), b(this.pick(['\0', '\r', '\n', '\r\r\n', '\xff'])), buf.subarray(at)]);
      }
    }
    return buf;
  }

  /** Splits an input into 1-3 byte pieces (a slow writer), at most 40 of them. */
  slow(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < data.length && out.length < 39) {
      const n = this.rng.int(1, 3);
      out.push(data.subarray(i, i + n));
      i += n;
    }
    if (i < data.length) out.push(data.subarray(i));
    return out;
  }

  /** One case for this port: a generic TCP shape (raw, half-open, reset, slow) or one of its protocol's own. */
  next(e: Endpoint): Case {
    const tls = isTls(e);
    const proto = baseProto(e);
    const own = PROTOCOL_CASES[proto];
    const r = this.rng.next();
    if (tls && r < 0.2) return this.tlsGarbage();
    if (!own || r < 0.35) return this.generic(tls, this.validFor(proto, e));
    const c = own(this, e);
    return { gapMs: 0, then: 'hold', ...c, tls: tls && (c.tls ?? true) };
  }

  /** A valid opening for the protocol (mutated by the generic cases), or random text when none is known. */
  validFor(proto: string, e: Endpoint): Buffer {
    const v = VALID[proto];
    return v ? v(this, e) : b(`hello ${this.rng.int(0, 1e6)}\r\n`);
  }

  generic(tls: boolean, valid: Buffer): Case {
    const kind = this.pick(['raw', 'mutated', 'half-open', 'reset', 'slow', 'idle', 'overlong', 'nul-crlf'] as const);
    const base = { family: kind, gapMs: 0, then: 'hold' as const, tls };
    switch (kind) {
      case 'raw':
        return { ...base, chunks: [this.bytes(this.size())] };
      case 'mutated':
        return { ...base, chunks: [this.mutate(valid)] };
      case 'half-open':
        return { ...base, chunks: [valid.subarray(0, this.rng.int(0, valid.length))], then: 'fin' };
      case 'reset':
        return { ...base, chunks: [valid.subarray(0, this.rng.int(0, valid.length))], then: 'rst' };
      case 'slow':
        return { ...base, chunks: this.slow(this.mutate(valid)), gapMs: this.rng.int(5, 25) };
      case 'idle':
        return { ...base, chunks: [] };
      case 'overlong':
        return { ...base, chunks: [Buffer.alloc(this.pick([8193, 70_000, 1024 * 1024 + 10]), this.pick([0x41, 0x00, 0x20])), b(this.rng.chance(0.5) ? '\r\n' : '')] };
      case 'nul-crlf':
        return { ...base, chunks: [b(valid.toString('latin1').replace(/\r\n/g, () => this.pick(['\n', '\r', '\0\r\n', '\r\0\n', '\r\r\n'])))] };
    }
  }

  /** Bytes that are not a TLS handshake, sent to a TLS port: plaintext, random, a record header with a huge length. */
  tlsGarbage(): Case {
    const kind = this.rng.int(0, 3);
    const chunks =
      kind === 0
        ? [b('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]
        : kind === 1
          ? [Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), this.bytes(this.rng.int(0, 2000))])]
          : kind === 2
            ? [Buffer.from([0x16, 0x03, this.rng.int(0, 4), this.rng.int(0, 255), this.rng.int(0, 255), 0x01, 0x00, 0x00, this.rng.int(0, 255)]), this.bytes(this.rng.int(0, 300))]
            : [this.bytes(this.size())];
    return { family: 'tls-garbage', chunks, gapMs: 0, then: this.rng.chance(0.3) ? 'fin' : 'hold', tls: false };
  }
}

// ---- valid openings, per protocol (what the generic cases mutate) ----

const VALID: Record<string, (g: CaseGenerator, e: Endpoint) => Buffer> = {
  tcp: (g) => b(`line ${g.rng.int(0, 1e6)}\r\nsecond\r\n`),
  http: () => b('GET /anything HTTP/1.1\r\nHost: localhost\r\nUser-Agent: fuzz\r\n\r\n'),
  ws: (g, e) => upgrade(g.pick(e.paths?.length ? e.paths : ['/'])),
  smtp: () => b('EHLO fuzz.test\r\nMAIL FROM:<a@fuzz.test>\r\nRCPT TO:<demo@localhost>\r\nNOOP\r\nRSET\r\n'),
  imap: () => b('a1 CAPABILITY\r\na2 NOOP\r\na3 LOGIN demo demo\r\na4 SELECT INBOX\r\na5 FETCH 1:* (FLAGS BODY[])\r\n'),
  pop3: () => b('CAPA\r\nUSER demo\r\nPASS demo\r\nSTAT\r\nLIST\r\nRETR 1\r\n'),
  ftp: () => b('FEAT\r\nUSER demo\r\nPASS demo\r\nPWD\r\nEPSV\r\nLIST\r\nTYPE I\r\n'),
};

function upgrade(path: string, extra = ''): Buffer {
  return b(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
}

// ---- protocol-specific cases ----

type ProtoCase = Omit<Case, 'gapMs' | 'then' | 'tls'> & CaseOptions;
type CaseOptions = { gapMs?: number; then?: Case['then']; tls?: boolean; alpn?: string[] };

/** A WebSocket frame: `mask` false makes the unmasked frame a server must refuse; `len` overrides the length field. */
export function frame(opts: { fin?: boolean; rsv?: number; opcode: number; payload: Buffer; mask?: boolean; len?: bigint }): Buffer {
  const { fin = true, rsv = 0, opcode, payload, mask = true } = opts;
  const len = opts.len ?? BigInt(payload.length);
  const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (len < 126n) head.push(m | Number(len));
  else if (len < 65536n) head.push(m | 126, Number(len >> 8n) & 255, Number(len) & 255);
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(i * 8)) & 255n));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i % 4]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

function wsCase(g: CaseGenerator, e: Endpoint): ProtoCase {
  const path = g.pick(e.paths?.length ? e.paths : ['/']);
  const text = (s: string): Buffer => frame({ opcode: 1, payload: b(s) });
  const kinds: Array<[string, () => Buffer[]]> = [
    ['ws-unmasked', () => [frame({ opcode: 1, payload: b('hi'), mask: false })]],
    ['ws-rsv', () => [frame({ opcode: g.pick([1, 2, 8, 9]), rsv: g.rng.int(1, 7), payload: b('x') })]],
    ['ws-reserved-opcode', () => [frame({ opcode: g.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: g.bytes(g.rng.int(0, 10)) })]],
    ['ws-fragmented-control', () => [frame({ fin: false, opcode: g.pick([8, 9, 10]), payload: b('ab') })]],
    ['ws-long-control', () => [frame({ opcode: g.pick([9, 10]), payload: Buffer.alloc(126 + g.rng.int(0, 200)) })]],
    ['ws-bad-utf8', () => [frame({ opcode: 1, payload: g.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80])]) })]],
    ['ws-2^63', () => [frame({ opcode: 2, payload: Buffer.alloc(0), len: g.pick([2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n]) })]],
    ['ws-2^32', () => [frame({ opcode: 2, payload: g.bytes(10), len: 2n ** 32n + 5n })]],
    ['ws-close-code', () => {
      const code = g.pick([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]);
      const p = Buffer.alloc(2);
      p.writeUInt16BE(code);
      return [frame({ opcode: 8, payload: g.rng.chance(0.2) ? Buffer.from([0x03]) : Buffer.concat([p, g.rng.chance(0.5) ? Buffer.from([0xff]) : b('bye')]) })];
    }],
    ['ws-continuation', () => [frame({ opcode: 0, payload: b('orphan') })]],
    ['ws-interleaved', () => [frame({ fin: false, opcode: 1, payload: b('a') }), frame({ opcode: 1, payload: b('b') })]],
    ['ws-fragments', () => {
      const n = g.rng.int(2, 30);
      return Array.from({ length: n }, (_, i) => frame({ fin: i === n - 1, opcode: i === 0 ? 1 : 0, payload: b('x'.repeat(g.rng.int(0, 50))) }));
    }],
    ['ws-json', () => [text(g.pick(['{"type":"join","room":"fuzz"}', '{"type":"offer","to":"x","session":"s","sdp":"v=0"}', '{"type":', '[]', 'null', '{"type":"join","room":"' + 'r'.repeat(g.rng.int(60, 70)) + '"}', '{"type":"candidate","candidate":{}}']))]],
    ['ws-big', () => [frame({ opcode: 2, payload: Buffer.alloc(g.pick([64 * 1024 + 1, 1024 * 1024 + 1, 1000])) })]],
    ['ws-mutated', () => [g.mutate(Buffer.concat([text('hello'), frame({ opcode: 9, payload: b('p') }), frame({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) })]))]],
    ['ws-random', () => [g.bytes(g.size())]],
  ];
  const badUpgrades = [
    upgrade(path).toString('latin1').replace(/Sec-WebSocket-Key: [^\r]*\r\n/, ''),
    upgrade(path).toString('latin1').replace('Version: 13', 'Version: 8'),
    upgrade(`/${'x'.repeat(g.rng.int(1, 9000))}`).toString('latin1'),
    upgrade(path, 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=99\r\n').toString('latin1'),
    upgrade(path, 'Content-Length: 5\r\n').toString('latin1') + 'hello',
  ];
  if (g.rng.chance(0.12)) return { family: 'ws-bad-upgrade', chunks: [b(g.pick(badUpgrades))] };
  const [family, make] = g.pick(kinds);
  const frames = make();
  const chunks = g.rng.chance(0.2) ? g.slow(Buffer.concat([upgrade(path), ...frames])) : [upgrade(path), ...frames];
  return { family, chunks, gapMs: chunks.length > 2 ? g.rng.int(2, 15) : 5, then: g.rng.chance(0.2) ? 'fin' : 'hold' };
}

function httpCase(g: CaseGenerator, e: Endpoint): ProtoCase {
  const h = 'Host: localhost\r\n';
  const shapes: Array<[string, string]> = [
    ['http-cl-te', `POST /anything HTTP/1.1\r\n${h}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${h}\r\n`],
    ['http-te-cl', `POST /anything HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
    ['http-te-obfuscated', `POST /anything HTTP/1.1\r\n${h}Transfer-Encoding: ${g.pick(['xchunked', 'chunked, identity', ' chunked', 'chunked\t', 'CHUNKED'])}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
    ['http-te-space', `POST /anything HTTP/1.1\r\n${h}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`],
    ['http-two-cl', `POST /anything HTTP/1.1\r\n${h}Content-Length: 3\r\nContent-Length: 5\r\n\r\nhello`],
    ['http-bad-chunk', `POST /upload HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n${g.pick(['zz', 'ffffffffffffffffffff', '-1', '5;' + 'x'.repeat(5000), '5 '])}\r\nhello\r\n0\r\n\r\n`],
    ['http-obs-fold', `GET /anything HTTP/1.1\r\n${h}X-A: a\r\n b\r\n\r\n`],
    ['http-bare-lf', `GET /anything HTTP/1.1\n${h.replace('\r', '')}\n`],
    ['http-nul-header', `GET /anything HTTP/1.1\r\n${h}X-A: a\0b\r\n\r\n`],
    ['http-huge-header', `GET /anything HTTP/1.1\r\n${h}X-Big: ${'a'.repeat(g.pick([9000, 70_000]))}\r\n\r\n`],
    ['http-many-headers', `GET /anything HTTP/1.1\r\n${h}${Array.from({ length: 3000 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`],
    ['http-absolute-uri', `GET http://169.254.169.254/latest HTTP/1.1\r\n${h}\r\n`],
    ['http-connect', `CONNECT ${g.pick(['10.0.0.1:80', '127.0.0.1:1', 'localhost', '[::1]:22', 'x'.repeat(300) + ':1'])} HTTP/1.1\r\n${h}\r\n`],
    ['http-bad-request-line', g.pick(['GET  /  HTTP/1.1\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'get / http/1.1\r\n\r\n', 'GET /\r\n\r\n', `GET /${'a'.repeat(20000)} HTTP/1.1\r\n${h}\r\n`, '\r\n\r\n\r\n'])],
    ['http-half-body', `POST /upload HTTP/1.1\r\n${h}Content-Length: ${g.pick(['1000000000', '-1', '1e9', '0x10', '99999999999999999999'])}\r\n\r\npartial`],
    ['http-expect', `POST /upload HTTP/1.1\r\n${h}Expect: ${g.pick(['100-continue', 'bogus'])}\r\nContent-Length: 5\r\n\r\n`],
    ['http-h2-preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['http-pipelined', Array.from({ length: g.rng.int(2, 40) }, () => `GET /${g.pick(['anything', 'status/500', 'delay/0', 'bytes/10', 'cache', 'nope'])} HTTP/1.1\r\n${h}\r\n`).join('')],
  ];
  if (isTls(e) && g.rng.chance(0.3)) {
    // HTTP/2 by ALPN, then frames with random types, flags, stream ids and lengths.
    const frames = Array.from({ length: g.rng.int(1, 8) }, () => {
      const payload = g.bytes(g.rng.int(0, 64));
      const len = g.rng.chance(0.2) ? g.rng.int(0, 0xffffff) : payload.length;
      const head = Buffer.from([len >> 16, (len >> 8) & 255, len & 255, g.rng.int(0, 12), g.rng.int(0, 255), 0, 0, 0, 0]);
      head.writeUInt32BE(g.rng.int(0, 2 ** 31 - 1) & (g.rng.chance(0.5) ? 0xff : 0x7fffffff), 5);
      return Buffer.concat([head, payload]);
    });
    return { family: 'h2-frames', chunks: [b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), ...frames], alpn: ['h2'], gapMs: 2 };
  }
  const [family, text] = g.pick(shapes);
  return { family, chunks: [b(text)], then: g.rng.chance(0.2) ? 'fin' : 'hold' };
}

/** Line protocols: a few commands from the protocol's own vocabulary with random arguments and separators. */
function lineCase(vocab: string[], starttls: string): (g: CaseGenerator) => ProtoCase {
  return (g) => {
    const r = g.rng.next();
    if (r < 0.15) {
      // The TLS upgrade, then bytes that are not a TLS handshake.
      return { family: 'starttls-garbage', chunks: [b(starttls), g.rng.chance(0.5) ? g.bytes(g.rng.int(1, 3000)) : b('NOOP\r\nQUIT\r\n')], gapMs: 150 };
    }
    const args = (): string =>
      g.pick(['', ' x', ` ${'A'.repeat(g.rng.int(100, 3000))}`, ' {5}', ' {4294967296}', ' {10+}', ` ${'('.repeat(g.rng.int(10, 200))}`, ' "\\"', ' \xff\xfe', ' 1:*', ' -1', ' 99999999999', ' ../../../etc/passwd', ' <>', ' =?utf-8?', ' 127,0,0,1,0,9', ' |2|::1|9|']);
    const sep = (): string => g.pick(['\r\n', '\r\n', '\r\n', '\n', '\r', '\0\r\n']);
    const lines = Array.from({ length: g.rng.int(1, 12) }, () => `${g.pick(vocab)}${args()}${sep()}`).join('');
    return { family: 'commands', chunks: [b(lines)], gapMs: 0, then: g.rng.chance(0.2) ? 'fin' : 'hold' };
  };
}

const tag = (verbs: string[]): string[] => verbs.map((v, i) => `t${i} ${v}`);

const PROTOCOL_CASES: Record<string, (g: CaseGenerator, e: Endpoint) => ProtoCase> = {
  ws: wsCase,
  http: httpCase,
  smtp: lineCase(['EHLO x', 'HELO', 'MAIL FROM:<a@b>', 'RCPT TO:<demo@localhost>', 'DATA', '.', 'RSET', 'NOOP', 'VRFY', 'EXPN', 'AUTH PLAIN', 'AUTH LOGIN', 'AUTH CRAM-MD5', 'BDAT 10 LAST', 'STARTTLS', 'XCLIENT', 'HELP', 'QUIT'], 'EHLO fuzz\r\nSTARTTLS\r\n'),
  imap: lineCase(tag(['CAPABILITY', 'NOOP', 'LOGIN', 'AUTHENTICATE PLAIN', 'STARTTLS', 'SELECT', 'EXAMINE', 'FETCH', 'UID FETCH', 'SEARCH CHARSET', 'APPEND INBOX', 'IDLE', 'LIST', 'STATUS', 'STORE', 'LOGOUT']).concat(['DONE', '*', '']), 'a STARTTLS\r\n'),
  pop3: lineCase(['USER', 'PASS', 'APOP', 'STAT', 'LIST', 'RETR', 'TOP 1', 'DELE', 'UIDL', 'CAPA', 'STLS', 'AUTH', 'RSET', 'NOOP', 'QUIT'], 'STLS\r\n'),
  ftp: lineCase(['USER', 'PASS', 'AUTH TLS', 'PBSZ 0', 'PROT P', 'PASV', 'EPSV', 'PORT', 'EPRT', 'LIST', 'RETR', 'STOR', 'CWD', 'TYPE', 'REST', 'ABOR', 'FEAT', 'OPTS UTF8', 'MLSD', 'SITE', 'STAT', 'HELP', 'QUIT'], 'AUTH TLS\r\n'),
  tcp: lineCase(['echo', 'hello', '\xff\xfe', ''], 'hello\r\n'),
};

/** A random datagram for a UDP port: empty, random, a mutated wirelab header, up to the 65,507-byte limit. */
export function datagram(g: CaseGenerator): Buffer {
  const r = g.rng.next();
  if (r < 0.1) return Buffer.alloc(0);
  if (r < 0.4) return g.mutate(Buffer.concat([Buffer.from([0x57, 0x4c, 0, 1]), Buffer.alloc(12), b('payload')]));
  if (r < 0.95) return g.bytes(g.rng.int(1, 1500));
  return g.bytes(g.rng.int(1500, 65_507));
}
