import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createTracer, MemorySink, type Tracer } from '../../core/trace/index.ts';
import { startFtpServer } from '../../servers/ftp/index.ts';
import { startImapServer } from '../../servers/imap/index.ts';
import { startPop3Server } from '../../servers/pop3/index.ts';
import { startSmtpServer } from '../../servers/smtp/index.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import { memoryStore } from '../helpers/mail.ts';

/**
 * One suite for the per-connection limits of every line-protocol server (DESIGN.md convention 12, as hono runs one
 * router suite against five routers): the same client behaviour against FTP, SMTP, POP3, IMAP and the TCP echo server,
 * each started with the same option names. The SERVERS table is the only per-server code: how to start it, what it
 * says, and which limits apply. Slots (maxConnections, maxConnectionsPerAddress) are in connection-limits.test.ts.
 */

/** The limits every line-protocol server names the same way. */
interface LineLimits {
  maxLineLength?: number;
  maxUnknownCommands?: number;
  idleTimeoutMs?: number;
  maxAuthFailures?: number;
  authFailureDelayMs?: number;
}

interface LineServer {
  name: string;
  /** Starts the server with `o` (a server without one of the limits leaves it out) and, where it has logins, clear-text auth allowed. */
  start(t: TestContext, o: LineLimits & { tracer: Tracer }): Promise<{ port: number; close(): Promise<void> }>;
  /** The first thing a client reads; null for echo, which says nothing first. */
  greeting: RegExp | null;
  /** A line that shows the server still serves, and what it answers (echo's echo, a NOOP...). */
  probe: { line: string; answer: RegExp };
  /** The answer to a line longer than maxLineLength, before the server closes. */
  overlong: RegExp;
  /** The answer when idleTimeoutMs passes with no command; null: the server just closes (echo has no error answer for it). */
  idle: RegExp | null;
  /**
   * Unknown commands: the answer to each, and the one that ends the connection. `fixedLimit` when the server's limit is
   * not an option (smtp-server closes after 10, its own). Absent for echo, which has no commands.
   */
  unknown?: { line: string; each: RegExp; final: RegExp; fixedLimit?: number };
  /** A wrong login: lines sent first (EHLO), the lines of one attempt, the answer to each, and the one that ends it. */
  auth?: { before?: { line: string; answer: RegExp }; attempt: string[]; refused: RegExp; final: RegExp };
}

async function ftpRoot(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-line-limits-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const SMTP_WRONG = Buffer.from('\0demo\0wrong').toString('base64');

const SERVERS: LineServer[] = [
  {
    name: 'FTP',
    start: async (t, o) => startFtpServer({ ...o, allowInsecureAuth: true, rootDir: await ftpRoot(t) }),
    greeting: /^220 /m,
    probe: { line: 'NOOP', answer: /^200 /m },
    overlong: /^500 Command line too long/m,
    idle: /^421 Idle timeout/m,
    unknown: { line: 'FROB', each: /^500 /gm, final: /^421 /m },
    auth: { attempt: ['USER demo', 'PASS wrong'], refused: /^530 /gm, final: /^421 /m },
  },
  {
    name: 'SMTP',
    // smtp-server has no option for its unknown-command limit: it is fixed at 10.
    start: async (_t, o) => startSmtpServer({ ...o, maxUnknownCommands: undefined, allowInsecureAuth: true, store: await memoryStore() } as never),
    greeting: /^220 /m,
    probe: { line: 'NOOP', answer: /^250 /m },
    overlong: /^421 .*Command line too long/m,
    idle: /^421 .*Timeout/m,
    unknown: { line: 'FROB', each: /^500 /gm, final: /^421 /m, fixedLimit: 10 },
    auth: { before: { line: 'EHLO me', answer: /^250 /m }, attempt: [`AUTH PLAIN ${SMTP_WRONG}`], refused: /^535 /gm, final: /^421 /m },
  },
  {
    name: 'POP3',
    start: async (_t, o) => startPop3Server({ ...o, allowInsecureAuth: true, store: await memoryStore() }),
    greeting: /^\+OK /m,
    probe: { line: 'NOOP', answer: /^-ERR /m },
    overlong: /^-ERR line too long/m,
    idle: /^-ERR \[SYS\/TEMP\] autologout/m,
    unknown: { line: 'FROB', each: /^-ERR unknown command/gm, final: /^-ERR too many unknown commands/m },
    auth: { attempt: ['USER demo', 'PASS wrong'], refused: /^-ERR \[AUTH\] invalid user name or password\r$/gm, final: /too many failures, closing/m },
  },
  {
    name: 'IMAP',
    start: async (_t, o) => startImapServer({ ...o, allowInsecureAuth: true, store: await memoryStore() }),
    greeting: /^\* OK /m,
    probe: { line: 'p NOOP', answer: /^p OK/m },
    overlong: /^\* BAD \[TOOBIG\]/m,
    idle: /^\* BYE Autologout/m,
    unknown: { line: 'a FROB', each: /^a BAD /gm, final: /^\* BYE /m },
    auth: { attempt: ['a LOGIN demo wrong'], refused: /^a NO /gm, final: /^\* BYE /m },
  },
  {
    name: 'TCP echo',
    // No commands and no logins: only the limits it has (an option given as undefined would be checked as one).
    start: async (_t, { maxUnknownCommands: _u, maxAuthFailures: _a, authFailureDelayMs: _d, ...o }) => startTcpServer({ ...o, framing: 'line' }),
    greeting: null,
    probe: { line: 'ping', answer: /^ping$/m },
    overlong: /^ERR line too long/m,
    idle: null,
  },
];

/** A line client: everything read so far in `text`, waits for a pattern or for the close. */
class LineClient {
  text = '';
  readonly closed: Promise<void>;
  #done = false;
  #waiters = new Set<() => void>();
  private constructor(readonly socket: net.Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
      for (const w of this.#waiters) w();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#done = true;
        for (const w of this.#waiters) w();
        resolve();
      }),
    );
  }

  static async open(port: number): Promise<LineClient> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new LineClient(socket);
  }

  send(...lines: string[]): void {
    this.socket.write(lines.map((l) => `${l}\r\n`).join(''));
  }

  /** Waits until `ok()` holds; fails if the connection closes first or 15 s pass (a bound for a loaded machine). */
  until(ok: () => boolean, what: string, ms = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (ok()) done(resolve);
        else if (this.#done) done(() => reject(new Error(`closed before ${what}; read ${JSON.stringify(this.text.slice(-300))}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within ${ms} ms; read ${JSON.stringify(this.text.slice(-300))}`))), ms);
      const done = (f: () => void): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        f();
      };
      this.#waiters.add(check);
      check();
    });
  }

  match(re: RegExp, what: string): Promise<void> {
    return this.until(() => new RegExp(re.source, re.flags.replace('g', '')).test(this.text), what);
  }

  count(re: RegExp): number {
    return this.text.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))?.length ?? 0;
  }

  /** Waits for the server's close (15 s at most). */
  async closedByServer(what: string): Promise<void> {
    await this.until(() => this.#done, `${what}: the server's close`);
  }
}

async function greeted(s: LineServer, port: number): Promise<LineClient> {
  const c = await LineClient.open(port);
  if (s.greeting) await c.match(s.greeting, 'greeting');
  return c;
}

/** A new connection is greeted and answered: the server kept serving. */
async function stillServes(s: LineServer, port: number): Promise<void> {
  const c = await greeted(s, port);
  c.send(s.probe.line);
  await c.match(s.probe.answer, `the answer to ${s.probe.line}`);
  c.socket.destroy();
}

async function started(t: TestContext, s: LineServer, o: LineLimits): Promise<{ port: number; sink: MemorySink }> {
  const sink = new MemorySink();
  const server = await s.start(t, { ...o, tracer: createTracer([sink]) });
  t.after(() => server.close());
  return { port: server.port, sink };
}

for (const s of SERVERS) {
  test(`${s.name}: a line over maxLineLength gets the protocol's answer and a close; the server keeps serving`, async (t) => {
    const { port } = await started(t, s, { maxLineLength: 600 });
    const c = await greeted(s, port);
    c.send('x'.repeat(700));
    await c.match(s.overlong, 'the overlong-line answer');
    await c.closedByServer('overlong line');
    await stillServes(s, port);
  });

  test(`${s.name}: idleTimeoutMs ends a silent connection${s.idle ? " with the protocol's answer" : ''}, not before the timeout`, async (t) => {
    const idleTimeoutMs = 300;
    const { port, sink } = await started(t, s, { idleTimeoutMs });
    const t0 = performance.now();
    const c = await greeted(s, port);
    await c.closedByServer('idle timeout');
    // A lower bound, which load cannot break: the socket timer never fires early.
    assert.ok(performance.now() - t0 >= idleTimeoutMs - 1, `closed after ${Math.round(performance.now() - t0)} ms`);
    if (s.idle) assert.match(c.text, s.idle);
    // A `timeout` event; smtp-server's own is its 421 reply, traced as a reply.
    assert.ok(sink.events.some((e) => e.kind === 'timeout' || /timeout/i.test(e.summary)), 'a timeout trace event');
    await stillServes(s, port);
  });

  const unknown = s.unknown;
  if (unknown) {
    test(`${s.name}: unknown commands are answered, and past maxUnknownCommands the connection ends with the protocol's answer`, async (t) => {
      const limit = unknown.fixedLimit ?? 3;
      const { port } = await started(t, s, { maxUnknownCommands: limit });
      const c = await greeted(s, port);
      // One at a time, each answered before the next: the count below is what the server said, not what was sent.
      for (let i = 1; i <= limit + 1; i++) {
        c.send(unknown.line);
        await c.until(() => c.count(unknown.each) >= i || new RegExp(unknown.final.source, 'm').test(c.text), `the answer to unknown command #${i}`);
        if (new RegExp(unknown.final.source, 'm').test(c.text)) break;
      }
      await c.match(unknown.final, 'the too-many-unknown-commands answer');
      await c.closedByServer('unknown commands');
      // Servers differ by one in where they draw the line (smtp-server answers the 10th with 421; FTP the 21st).
      const answered = c.count(unknown.each);
      assert.ok(answered === limit || answered === limit - 1, `${answered} unknown commands answered before the close, limit ${limit}`);
      await stillServes(s, port);
    });

    // A server whose limit is its library's own (smtp-server: 10) has no option to check.
    if (unknown.fixedLimit === undefined) {
      test(`${s.name}: maxUnknownCommands is checked when the server is built`, async (t) => {
        await assert.rejects(started(t, s, { maxUnknownCommands: 0 }), { code: 'WL_ERR_INVALID_OPTION', option: 'maxUnknownCommands' });
      });
    }
  }

  const auth = s.auth;
  if (auth) {
    test(`${s.name}: each wrong password is answered only after authFailureDelayMs, and past maxAuthFailures the connection ends`, async (t) => {
      const authFailureDelayMs = 60;
      const maxAuthFailures = 3;
      const { port, sink } = await started(t, s, { authFailureDelayMs, maxAuthFailures });
      const c = await greeted(s, port);
      if (auth.before) {
        c.send(auth.before.line);
        await c.match(auth.before.answer, `the answer to ${auth.before.line}`);
      }
      for (let i = 1; i < maxAuthFailures; i++) {
        const t0 = performance.now();
        c.send(...auth.attempt);
        await c.until(() => c.count(auth.refused) >= i, `refusal #${i}`);
        // A lower bound: the reply was held back at least the delay (a timer never fires early).
        assert.ok(performance.now() - t0 >= authFailureDelayMs - 1, `refusal #${i} after ${Math.round(performance.now() - t0)} ms`);
      }
      c.send(...auth.attempt);
      await c.match(auth.final, 'the too-many-failures answer');
      await c.closedByServer('auth failures');
      assert.equal(sink.events.filter((e) => e.kind === 'limit').length >= 1, true, 'a limit trace event');
      await stillServes(s, port);
    });

    test(`${s.name}: maxAuthFailures and authFailureDelayMs are checked when the server is built`, async (t) => {
      await assert.rejects(started(t, s, { maxAuthFailures: 0 }), { code: 'WL_ERR_INVALID_OPTION', option: 'maxAuthFailures' });
      await assert.rejects(started(t, s, { authFailureDelayMs: -1 }), { code: 'WL_ERR_INVALID_OPTION', option: 'authFailureDelayMs' });
    });
  }

  test(`${s.name}: bad limit values and old option names throw a TypeError naming the option`, async (t) => {
    for (const [o, option] of [
      [{ maxLineLength: 0 }, 'maxLineLength'],
      [{ idleTimeoutMs: -1 }, 'idleTimeoutMs'],
      [{ idleTimeoutMs: 1.5 }, 'idleTimeoutMs'],
    ] as const) {
      await assert.rejects(started(t, s, o), (e: TypeError & { code?: string; option?: string }) => e instanceof TypeError && e.code === 'WL_ERR_INVALID_OPTION' && e.option === option, option);
    }
    for (const [old, now] of [['maxClients', 'maxConnections'], ['socketTimeoutMs', 'idleTimeoutMs'], ['maxBadCommands', 'maxUnknownCommands'], ['maxLoginFailures', 'maxAuthFailures'], ['loginFailDelayMs', 'authFailureDelayMs']] as const) {
      // Passed straight to the server's entry point, as a user's old code would.
      const start = (o: object): Promise<unknown> =>
        s.name === 'TCP echo' ? startTcpServer(o) : s.start(t, { ...(o as LineLimits), tracer: createTracer([]) });
      await assert.rejects(start({ [old]: 5 }), (e: TypeError & { option?: string; renamedTo?: string }) => e instanceof TypeError && e.option === old && e.renamedTo === now, `${old} -> ${now}`);
    }
  });
}
