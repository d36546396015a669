import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { ErrorCodes, type WirelabError } from '../../core/errors.ts';
import { SocketSet } from '../../core/server.ts';
import { tlsClientOptions, tlsServerOptions } from '../../core/tls/index.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { LineConnection, lineFramer, type LineConnectionOptions } from '../../servers/line/connection.ts';

/**
 * The shared line-protocol connection on real loopback sockets, with a toy protocol: every line is answered
 * `ok <line>`, `big` is answered with 1 MiB, `tls` is answered `go` and upgrades. No IMAP, POP3 or FTP involved.
 */

interface Harness {
  port: number;
  /** Lines the server ran, in order. */
  ran: string[];
  overlong: WirelabError[];
  sink: MemorySink;
  conns: Array<LineConnection<string>>;
  sockets: SocketSet;
}

async function start(t: TestContext, o: Partial<LineConnectionOptions<string>> = {}): Promise<Harness> {
  const sink = new MemorySink();
  const tracer = createTracer([sink]);
  const tlsOptions = await tlsServerOptions({});
  const context = tls.createSecureContext(tlsOptions);
  const sockets = new SocketSet();
  const h: Harness = { port: 0, ran: [], overlong: [], sink, conns: [], sockets };
  const server = net.createServer((socket) => {
    sockets.admit(socket, { maxConnections: 10, maxConnectionsPerAddress: 10 });
    const conn = new LineConnection<string>(socket, {
      proto: 'toy',
      cid: `toy-${h.conns.length}`,
      tracer,
      framer: () => lineFramer(32),
      maxPipelined: 4,
      idleTimeoutMs: 0,
      release: (s) => sockets.release(s),
      ...o,
    });
    h.conns.push(conn);
    conn.start({
      unit: (line) => {
        h.ran.push(line);
        if (line === 'big') conn.write(Buffer.alloc(1024 * 1024, 0x61));
        else if (line === 'tls') {
          conn.write('go\r\n');
          conn.startTls({ context, settings: {} });
        } else conn.write(`ok ${line}\r\n`);
      },
      overlong: (err) => {
        h.overlong.push(err);
        conn.end('too long\r\n');
      },
      idle: () => conn.end('idle\r\n'),
      close: () => undefined,
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  h.port = (server.address() as net.AddressInfo).port;
  t.after(
    () =>
      new Promise<void>((r) => {
        sockets.destroyAll();
        server.close(() => r());
      }),
  );
  return h;
}

function connect(t: TestContext, port: number): Promise<net.Socket> {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  t.after(() => c.destroy());
  return once(c, 'connect').then(() => c);
}

/** Reads until `pattern` matches what arrived, or fails after 5 s. */
function readUntil(socket: net.Socket, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => done(new Error(`timed out; got ${JSON.stringify(text.slice(0, 200))}`)), 5000);
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (pattern.test(text)) done();
    };
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      if (err) reject(err);
      else resolve(text);
    };
    socket.on('data', onData);
  });
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('lines split at awkward boundaries (inside CRLF, one byte at a time, several per chunk) come out whole and in order', async (t) => {
  const h = await start(t);
  const c = await connect(t, h.port);
  const answers = readUntil(c, /ok five\r\n/);
  const pieces = ['on', 'e\r', '\ntw', 'o\n', 'thr', 'ee\r\nfour\r\nfi', 've', '\r', '\n'];
  for (const p of pieces) {
    c.write(p);
    await tick(5);
  }
  assert.equal(await answers, 'ok one\r\nok two\r\nok three\r\nok four\r\nok five\r\n');
  assert.deepEqual(h.ran, ['one', 'two', 'three', 'four', 'five']);
});

test('a line past maxLineLength: the lines before it run, then the overlong handler answers, with a limit event and the code', async (t) => {
  const h = await start(t);
  const c = await connect(t, h.port);
  const text = readUntil(c, /too long\r\n/);
  c.write(`a\r\n${'x'.repeat(40)}\r\nnever\r\n`);
  assert.match(await text, /^ok a\r\ntoo long\r\n$/);
  await once(c, 'close');
  assert.deepEqual(h.ran, ['a']);
  assert.equal(h.overlong[0]?.code, ErrorCodes.LINE_TOO_LONG);
  assert.equal(h.sink.find({ kind: 'limit' }).length, 1);
});

test('STARTTLS: what the client pipelined after the command is discarded, and only what comes over TLS runs', async (t) => {
  const h = await start(t);
  const c = await connect(t, h.port);
  const go = readUntil(c, /go\r\n/);
  // The injection of CVE-2011-0411: a command sent in clear behind STARTTLS, in the same segment.
  c.write('tls\r\ninjected\r\nhalf a li');
  assert.equal(await go, 'go\r\n');
  const s = tls.connect({ socket: c, ...(await tlsClientOptions({})), servername: 'localhost' });
  s.on('error', () => {});
  await once(s, 'secureConnect');
  const ok = readUntil(s, /ok after\r\n/);
  s.write('after\r\n');
  assert.equal(await ok, 'ok after\r\n');
  assert.deepEqual(h.ran, ['tls', 'after']);
  const discarded = h.sink.find({ kind: 'discarded' });
  assert.equal(discarded.length, 1);
  assert.deepEqual(discarded[0]!.meta, { units: 1, bytes: 'half a li'.length });
  assert.equal(h.conns[0]!.secure, true);
  s.destroy();
});

test('backpressure: a client that pipelines without reading holds the server at the socket buffers, then gets every answer', async (t) => {
  const h = await start(t, { maxPipelined: 4 });
  const c = await connect(t, h.port);
  c.pause();
  // 40 commands that each ask for 1 MiB: 40 MiB if the server buffered them all.
  c.write('big\r\n'.repeat(40));
  let ran = -1;
  // Until the count stops moving: the server waits for the client to read.
  while (ran !== h.ran.length) {
    ran = h.ran.length;
    await tick(200);
  }
  const conn = h.conns[0]!;
  assert.ok(ran < 40, `ran ${ran} of 40 while the client read nothing`);
  assert.ok(conn.socket.writableLength <= 4 * 1024 * 1024, `server buffer ${conn.socket.writableLength} B`);
  assert.ok(conn.queued <= 40 - ran, 'the rest waits in the queue or in the kernel');
  t.diagnostic(`client not reading: ${ran} of 40 commands ran, server socket buffer ${conn.socket.writableLength} B, ${conn.queued} queued`);
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  c.resume();
  while (got < 40 * 1024 * 1024) await tick(20);
  assert.equal(h.ran.length, 40);
  assert.equal(got, 40 * 1024 * 1024);
});

test('end(): the last answer, the slot given back at once, the socket closed by the client FIN (not by the linger timer)', async (t) => {
  const h = await start(t, { idleTimeoutMs: 150, lingerMs: 60_000 });
  const c = await connect(t, h.port);
  assert.equal(h.sockets.size, 1);
  const idle = readUntil(c, /idle\r\n/);
  assert.equal(await idle, 'idle\r\n');
  assert.equal(h.conns[0]!.ended, true);
  assert.equal(h.sockets.size, 0, 'the slot is free before the socket closes');
  const started = Date.now();
  c.end();
  await once(c, 'close');
  assert.ok(Date.now() - started < 30_000);
  assert.equal(h.conns[0]!.socket.destroyed, true);
});

test('a line past the limit right after STARTTLS is discarded with the rest: TLS input is read normally', async (t) => {
  const h = await start(t);
  const c = await connect(t, h.port);
  const go = readUntil(c, /go\r\n/);
  c.write(`tls\r\n${'y'.repeat(100)}\r\n`);
  await go;
  const s = tls.connect({ socket: c, ...(await tlsClientOptions({})), servername: 'localhost' });
  s.on('error', () => {});
  await once(s, 'secureConnect');
  const ok = readUntil(s, /ok fine\r\n/);
  s.write('fine\r\n');
  await ok;
  assert.deepEqual(h.ran, ['tls', 'fine']);
  assert.equal(h.overlong.length, 0);
  s.destroy();
});
