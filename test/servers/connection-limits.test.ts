import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { tlsClientOptions } from '../../core/tls/index.ts';
import { mkdtemp, rm } from 'node:fs/promises';
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
 * One conformance suite for the connection limits of every line-protocol server (DESIGN.md convention 12): the same
 * client behaviour against FTP, SMTP, POP3, IMAP and the TCP echo server. Clients come from different loopback
 * addresses (127.0.0.2, 127.0.0.3...), which Linux routes to lo like 127.0.0.1.
 */

interface LimitOptions {
  maxConnectionsPerAddress: number;
  tracer: Tracer;
}

interface ServerUnderTest {
  name: string;
  start(t: TestContext, o: LimitOptions): Promise<{ port: number; close(): Promise<void> }>;
  /** The first thing a served client reads. For echo, whose server says nothing first, the echo of `probe`. */
  greeting: RegExp;
  /** What a refused client reads before the close ('' for echo: closed at once). */
  refusal: RegExp;
  probe?: string;
  /**
   * Input that makes the server end the connection itself (an overlong line) and the answer it gives. Absent for SMTP:
   * smtp-server counts a connection until its socket closes.
   */
  ender?: { input: string; answer: RegExp };
}

async function ftpRoot(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-limits-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const SERVERS: ServerUnderTest[] = [
  {
    name: 'FTP',
    start: async (t, o) => startFtpServer({ ...o, rootDir: await ftpRoot(t) }),
    greeting: /^220 /,
    refusal: /^421 Too many connections from your address/,
    ender: { input: `${'x'.repeat(3000)}\r\n`, answer: /^500 Command line too long/m },
  },
  {
    name: 'SMTP',
    start: async (_t, o) => startSmtpServer({ ...o, store: await memoryStore() }),
    greeting: /^220 /,
    refusal: /^421 .*Too many connections from your address/,
  },
  {
    name: 'POP3',
    start: async (_t, o) => startPop3Server({ ...o, store: await memoryStore() }),
    greeting: /^\+OK /,
    refusal: /^-ERR \[SYS\/TEMP\] too many connections from your address/,
    ender: { input: `${'x'.repeat(2000)}\r\n`, answer: /^-ERR line too long/m },
  },
  {
    name: 'IMAP',
    start: async (_t, o) => startImapServer({ ...o, store: await memoryStore() }),
    greeting: /^\* OK /,
    refusal: /^\* BYE Too many connections from your address/,
    ender: { input: `a1 ${'x'.repeat(70_000)}\r\n`, answer: /^\* BYE /m },
  },
  {
    name: 'TCP echo',
    start: async (_t, o) => startTcpServer({ ...o, framing: 'line' }),
    greeting: /^ping\n$/,
    refusal: /^$/,
    probe: 'ping\n',
    ender: { input: `${'x'.repeat(9000)}\n`, answer: /^ERR line too long/m },
  },
];

/** A client from `localAddress`: resolves with what it read first (or everything, if the server closed first). */
interface Client {
  socket: net.Socket;
  first: Promise<string>;
  closed: Promise<void>;
}

function connectFrom(port: number, localAddress: string, probe?: string, allowHalfOpen = false): Client {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen });
  socket.on('error', () => undefined);
  let buf = '';
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const first = new Promise<string>((resolve) => {
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) resolve(buf);
    });
    void closed.then(() => resolve(buf));
  });
  if (probe !== undefined) socket.once('connect', () => socket.write(probe));
  return { socket, first, closed };
}

for (const s of SERVERS) {
  test(`${s.name}: maxConnectionsPerAddress refuses the next connection from that address with the protocol's answer, serves other addresses, and frees the slot on close`, async (t) => {
    const sink = new MemorySink();
    const server = await s.start(t, { maxConnectionsPerAddress: 3, tracer: createTracer([sink]) });
    t.after(() => server.close());
    const held: Client[] = [];
    for (let i = 0; i < 3; i++) {
      const c = connectFrom(server.port, '127.0.0.2', s.probe);
      held.push(c);
      assert.match(await c.first, s.greeting, `held #${i}`);
    }
    const refused = connectFrom(server.port, '127.0.0.2', s.probe);
    assert.match(await refused.first, s.refusal);
    await refused.closed;
    const refusedEvents = sink.events.filter((e) => e.kind === 'refused');
    assert.equal(refusedEvents.length, 1);
    assert.equal((refusedEvents[0]!.meta as { limit: string }).limit, 'maxConnectionsPerAddress');

    // Another address is served while 127.0.0.2 is at its limit.
    const other = connectFrom(server.port, '127.0.0.3', s.probe);
    assert.match(await other.first, s.greeting);
    other.socket.destroy();

    // One of 127.0.0.2's connections closes: its slot is free again.
    held[0]!.socket.destroy();
    await held[0]!.closed;
    let again: Client | undefined;
    // The server learns of the close when it reads the FIN: a few tries, each one a new connection, the first that is
    // served ends the loop. On loopback the first normally is.
    for (let i = 0; i < 20; i++) {
      again = connectFrom(server.port, '127.0.0.2', s.probe);
      const got = await again.first;
      if (s.greeting.test(got)) break;
      await again.closed;
      again = undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(again, 'a connection from 127.0.0.2 is served once one of its three closed');
    again.socket.destroy();
    for (const c of held) c.socket.destroy();
  });
}

for (const s of SERVERS.filter((x) => x.ender)) {
  test(`${s.name}: a connection the server ends gives its slot back at once, before the client closes its side`, async (t) => {
    const server = await s.start(t, { maxConnectionsPerAddress: 2, tracer: createTracer([]) });
    t.after(() => server.close());
    const a = connectFrom(server.port, '127.0.0.2', s.probe);
    // allowHalfOpen: b's side stays open after the server's FIN, as a client that never closes would leave it.
    const b = connectFrom(server.port, '127.0.0.2', s.probe, true);
    assert.match(await a.first, s.greeting);
    assert.match(await b.first, s.greeting);
    // b sends an overlong line and then neither reads on nor closes: the server's answer is its last word.
    let rest = '';
    b.socket.on('data', (d: Buffer) => (rest += d.toString('latin1')));
    b.socket.write(s.ender!.input);
    for (let i = 0; i < 500 && !s.ender!.answer.test(rest); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(rest, s.ender!.answer);
    // At once (no retry): the slot b held is free although b's socket is still open on the client side.
    const c = connectFrom(server.port, '127.0.0.2', s.probe);
    assert.match(await c.first, s.greeting);
    for (const x of [a, b, c]) x.socket.destroy();
  });
}

/** Implicit-TLS servers: the slot is taken at TCP connect, the refusal is answered in TLS after the handshake. */
const TLS_SERVERS: Array<{ name: string; start(t: TestContext, o: LimitOptions): Promise<{ port: number; close(): Promise<void> }>; greeting: RegExp; refusal: RegExp }> = [
  { name: 'FTPS (implicit)', start: async (t, o) => startFtpServer({ ...o, implicitTls: true, rootDir: await ftpRoot(t) }), greeting: /^220 /, refusal: /^421 / },
  { name: 'IMAPS', start: async (_t, o) => startImapServer({ ...o, secure: true, store: await memoryStore() }), greeting: /^\* OK /, refusal: /^\* BYE / },
  { name: 'POP3S', start: async (_t, o) => startPop3Server({ ...o, secure: true, store: await memoryStore() }), greeting: /^\+OK /, refusal: /^-ERR \[SYS\/TEMP\]/ },
];

async function tlsFirstLine(port: number, localAddress: string): Promise<{ socket: tls.TLSSocket; line: string }> {
  // tls.connect's options have no localAddress: TLS over a TCP socket made from that address.
  const tcp = net.connect({ port, host: '127.0.0.1', localAddress });
  tcp.on('error', () => undefined);
  const socket = tls.connect({ ...(await tlsClientOptions()), socket: tcp, servername: 'localhost' });
  socket.on('error', () => undefined);
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) resolve(buf);
    });
    socket.once('close', () => resolve(buf));
  });
  return { socket, line };
}

for (const s of TLS_SERVERS) {
  test(`${s.name}: the refusal past maxConnectionsPerAddress comes in TLS`, async (t) => {
    const server = await s.start(t, { maxConnectionsPerAddress: 1, tracer: createTracer([]) });
    t.after(() => server.close());
    const first = await tlsFirstLine(server.port, '127.0.0.2');
    assert.match(first.line, s.greeting);
    const second = await tlsFirstLine(server.port, '127.0.0.2');
    assert.match(second.line, s.refusal);
    const other = await tlsFirstLine(server.port, '127.0.0.3');
    assert.match(other.line, s.greeting);
    for (const c of [first, second, other]) c.socket.destroy();
  });
}

test('maxConnectionsPerAddress is checked when each server is built', async (t) => {
  const tracer = createTracer([]);
  for (const s of SERVERS) {
    await assert.rejects(s.start(t, { maxConnectionsPerAddress: 0, tracer }), { code: 'WL_ERR_INVALID_OPTION', option: 'maxConnectionsPerAddress' }, s.name);
  }
});
