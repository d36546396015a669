import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tlsClientOptions } from '../../core/tls/index.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { startFtpServer, type FtpServerOptions, type RunningFtpServer } from '../../servers/ftp/index.ts';

export interface Reply {
  code: number;
  /** Every line of the reply, joined with \n. */
  text: string;
}

/**
 * A bare FTP control connection for tests: send a line, read one complete reply (multi-line aware). It speaks the
 * real protocol over a real socket; it exists so tests can send what no well-behaved client would.
 */
export class RawFtp {
  socket: net.Socket;
  #buf = '';
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.#listen(socket);
  }

  #listen(s: net.Socket): void {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.#buf += d;
      this.#wake();
    });
    s.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    s.on('error', () => {});
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** `localAddress` picks the client's address (127.0.0.2, ...: lo answers the whole 127/8). */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawFtp> {
    const s = net.connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new RawFtp(s);
  }

  /** Reads the next complete reply; rejects if the connection closes first. */
  async reply(): Promise<Reply> {
    for (;;) {
      const lines = this.#buf.split('\r\n');
      const first = lines[0] ?? '';
      const m = /^(\d{3})([ -])/.exec(first);
      if (m) {
        const end = m[2] === ' ' ? 0 : lines.findIndex((l, i) => i > 0 && l.startsWith(`${m[1]} `));
        if (end !== -1 && end < lines.length - 1) {
          const taken = lines.slice(0, end + 1);
          this.#buf = lines.slice(end + 1).join('\r\n');
          return { code: Number(m[1]), text: taken.join('\n') };
        }
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async cmd(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  async login(user = 'demo', password = 'demo'): Promise<void> {
    await this.reply(); // 220
    await this.cmd(`USER ${user}`);
    const r = await this.cmd(`PASS ${password}`);
    if (r.code !== 230) throw new Error(`login failed: ${r.code} ${r.text}`);
  }

  /** AUTH TLS on this connection (the helper then reads through TLS). */
  async startTls(): Promise<void> {
    const r = await this.cmd('AUTH TLS');
    if (r.code !== 234) throw new Error(`AUTH TLS: ${r.code}`);
    this.socket.removeAllListeners('data');
    const secure = tls.connect({ ...(await tlsClientOptions()), socket: this.socket });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#listen(secure);
  }

  /** PASV (or EPSV) then connect: the data socket, ready for a transfer command. */
  async passive(epsv = true): Promise<net.Socket> {
    const r = await this.cmd(epsv ? 'EPSV' : 'PASV');
    const port = epsv ? Number(/\|\|\|(\d+)\|/.exec(r.text)?.[1]) : pasvPort(r.text);
    const s = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return s;
  }

  close(): void {
    this.socket.destroy();
  }
}

function pasvPort(text: string): number {
  const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(text);
  return m ? Number(m[5]) * 256 + Number(m[6]) : NaN;
}

/** Reads a data socket to its end. */
export function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}

export interface TestFtp {
  server: RunningFtpServer;
  sink: MemorySink;
  rootDir: string;
}

/**
 * An FTP server on port 0 with a temporary root dir, closed (and the dir removed) when the test ends. It allows logins
 * in clear (`allowInsecureAuth: true`) because `RawFtp` speaks plain lines; tests of the secure default pass false.
 */
export async function startTestFtp(t: TestContext, options: FtpServerOptions = {}): Promise<TestFtp> {
  const rootDir = await mkdtemp(join(tmpdir(), 'wirelab-ftp-test-'));
  const sink = new MemorySink();
  const server = await startFtpServer({ rootDir, tracer: createTracer([sink]), allowInsecureAuth: true, ...options });
  t.after(async () => {
    await server.close();
    await rm(rootDir, { recursive: true, force: true });
  });
  return { server, sink, rootDir };
}
