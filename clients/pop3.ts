import net from 'node:net';
import tls from 'node:tls';
import { createDecoder, type Decoder } from '../core/framing.ts';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { checkBoolean, checkInt, checkPort, checkString, withDefaults } from '../core/options.ts';
import { DEFAULT_HOST } from '../core/server.ts';
import { attachKeylog, tlsClientOptions, traceTlsHandshake, type TlsSettings } from '../core/tls/index.ts';
import { NOOP_TRACER, nextCid, redactLine, socketEnds, type Tracer } from '../core/trace/index.ts';

export interface Pop3ClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Implicit TLS (POP3S). Default false. */
  secure?: boolean;
  /** Send STLS after the greeting and continue in TLS. Default true unless `secure` (false shows the clear text). */
  startTls?: boolean;
  /** Trust settings; by default the local CA (core/tls) is trusted. Pass `ca` for another server's certificate. */
  tls?: TlsSettings & { ca?: string; rejectUnauthorized?: boolean };
  /** Longest reply line accepted. Default 64 KiB. */
  maxLineLength?: number;
  /** Give up on a reply after this long. Default 10,000 ms. */
  timeoutMs?: number;
  tracer?: Tracer;
}

export interface Pop3Reply {
  ok: boolean;
  text: string;
  /** The body of a multi-line reply, dot-unstuffed, CRLF line ends. */
  body?: Buffer;
}

type ResolvedPop3Options = Pop3ClientOptions & { tracer: Tracer; timeoutMs: number; maxLineLength: number };

/** A small POP3 client (RFC 1939): one command at a time, counting commands and bytes. */
/** Every default of Pop3ClientOptions (`startTls` defaults to `!secure`). */
export const POP3_CLIENT_DEFAULTS = Object.freeze({ host: DEFAULT_HOST, secure: false, maxLineLength: 65536, timeoutMs: 10_000 });

export class Pop3Client {
  readonly cid: string;
  /** Commands sent: each waits for its reply, so this is the number of round trips after the greeting. */
  commands = 0;
  bytesIn = 0;
  bytesOut = 0;
  greeting = '';
  #socket: net.Socket;
  #decoder: Decoder;
  #lines: Buffer[] = [];
  #waiter: (() => void) | null = null;
  #error: Error | null = null;
  readonly #o: ResolvedPop3Options;

  private constructor(socket: net.Socket, o: ResolvedPop3Options, cid: string) {
    this.#o = o;
    this.cid = cid;
    this.#socket = socket;
    this.#decoder = createDecoder('line', { maxLineLength: o.maxLineLength });
    this.#attach(socket);
  }

  static async connect(options: Pop3ClientOptions): Promise<Pop3Client> {
    checkPort('port', options.port);
    const o = { ...withDefaults(POP3_CLIENT_DEFAULTS, options), tracer: options.tracer ?? NOOP_TRACER };
    checkInt('timeoutMs', o.timeoutMs, 1, 3600_000);
    checkInt('maxLineLength', o.maxLineLength, 64, 64 * 1024 * 1024);
    checkBoolean('secure', o.secure);
    const host = checkString('host', o.host);
    const cid = nextCid('pop3c');
    const socket = o.secure ? tls.connect({ host, port: o.port, ...(await Pop3Client.#tlsOptions(o)) }) : net.connect({ host, port: o.port });
    if (socket instanceof tls.TLSSocket) traceTlsHandshake(o.tracer, cid, socket, 'client');
    const c = new Pop3Client(socket, o, cid);
    const greeting = await c.#reply(false);
    // The TCP ends, so this client's events pair with the server's.
    o.tracer.emit('pop3', cid, '*', 'connected', () => ({ summary: `connected ${socket.localAddress}:${socket.localPort} → ${socket.remoteAddress}:${socket.remotePort}`, ...socketEnds(socket, 'client') }));
    if (!greeting.ok) throw new WirelabError(ErrorCodes.MAIL_PROTOCOL, `POP3 greeting: ${greeting.text}`, { status: greeting.text });
    c.greeting = greeting.text;
    if (o.startTls ?? !o.secure) await c.#startTls();
    return c;
  }

  static async #tlsOptions(o: Pop3ClientOptions): Promise<tls.ConnectionOptions> {
    const base = await tlsClientOptions(o.tls ?? {});
    return { ...base, ...(o.tls?.ca ? { ca: o.tls.ca } : {}), ...(o.tls?.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}) };
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      try {
        this.#lines.push(...this.#decoder.push(chunk));
      } catch (err) {
        this.#fail(err as Error);
        socket.destroy();
      }
      this.#wake();
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new WirelabError(ErrorCodes.CLOSED, 'POP3 connection closed')));
  }

  #fail(err: Error): void {
    this.#error ??= err;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  async #line(): Promise<string> {
    const deadline = Date.now() + this.#o.timeoutMs;
    while (this.#lines.length === 0) {
      if (this.#error) throw this.#error;
      const left = deadline - Date.now();
      if (left <= 0) throw new WirelabError(ErrorCodes.TIMEOUT, `no POP3 reply within ${this.#o.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.#lines.shift()!.toString('latin1');
  }

  async #reply(multi: boolean): Promise<Pop3Reply> {
    const status = await this.#line();
    this.#o.tracer.emit('pop3', this.cid, '<', 'reply', () => status);
    const ok = status.startsWith('+OK');
    const text = status.replace(/^(\+OK|-ERR)\s?/, '');
    if (!ok || !multi) return { ok, text };
    const body: string[] = [];
    for (let l = await this.#line(); l !== '.'; l = await this.#line()) body.push(l.startsWith('.') ? l.slice(1) : l);
    return { ok, text, body: Buffer.from(body.map((l) => `${l}\r\n`).join(''), 'latin1') };
  }

  /** Sends one command and waits for its reply (multi-line when `multi`). */
  async command(line: string, multi = false): Promise<Pop3Reply> {
    this.commands++;
    const buf = Buffer.from(`${line}\r\n`, 'latin1');
    this.bytesOut += buf.length;
    this.#o.tracer.emit('pop3', this.cid, '>', 'command', () => redactLine(line));
    this.#socket.write(buf);
    return this.#reply(multi);
  }

  async #must(line: string, multi = false): Promise<Pop3Reply> {
    const r = await this.command(line, multi);
    if (!r.ok) throw new WirelabError(ErrorCodes.MAIL_PROTOCOL, `${redactLine(line).split(' ')[0]}: -ERR ${r.text}`, { status: r.text });
    return r;
  }

  async #startTls(): Promise<void> {
    await this.#must('STLS');
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    this.#decoder = createDecoder('line', { maxLineLength: this.#o.maxLineLength });
    const secure = tls.connect({ socket: plain, ...(await Pop3Client.#tlsOptions(this.#o)) });
    attachKeylog(secure, this.#o.tls?.keylogFile);
    traceTlsHandshake(this.#o.tracer, this.cid, secure, 'client');
    this.#socket = secure;
    this.#attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
  }

  async capa(): Promise<string[]> {
    return (await this.#must('CAPA', true)).body!.toString('latin1').split('\r\n').filter(Boolean);
  }

  async login(user: string, password: string): Promise<void> {
    await this.#must(`USER ${user}`);
    await this.#must(`PASS ${password}`);
  }

  /** Number of messages and their total size. */
  async stat(): Promise<{ count: number; size: number }> {
    const [count = 0, size = 0] = (await this.#must('STAT')).text.split(' ').map(Number);
    return { count, size };
  }

  async list(): Promise<Array<{ n: number; size: number }>> {
    return (await this.#pairs('LIST')).map(([n, v]) => ({ n, size: Number(v) }));
  }

  async uidl(): Promise<Array<{ n: number; uid: string }>> {
    return (await this.#pairs('UIDL')).map(([n, v]) => ({ n, uid: v }));
  }

  async #pairs(cmd: string): Promise<Array<[number, string]>> {
    const body = (await this.#must(cmd, true)).body!.toString('latin1');
    return body
      .split('\r\n')
      .filter(Boolean)
      .map((l) => {
        const [n = '0', v = ''] = l.split(' ');
        return [Number(n), v];
      });
  }

  async retr(n: number): Promise<Buffer> {
    return (await this.#must(`RETR ${n}`, true)).body!;
  }

  async top(n: number, lines: number): Promise<Buffer> {
    return (await this.#must(`TOP ${n} ${lines}`, true)).body!;
  }

  async dele(n: number): Promise<void> {
    await this.#must(`DELE ${n}`);
  }

  async rset(): Promise<void> {
    await this.#must('RSET');
  }

  async noop(): Promise<void> {
    await this.#must('NOOP');
  }

  /** QUIT: the server enters the UPDATE state and removes what was marked with DELE. */
  async quit(): Promise<string> {
    const r = await this.#must('QUIT');
    this.#socket.end();
    return r.text;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

export function connectPop3(options: Pop3ClientOptions): Promise<Pop3Client> {
  return Pop3Client.connect(options);
}
