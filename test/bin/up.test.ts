import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connectTcp } from '../../clients/tcp.ts';
import { openUdp } from '../../clients/udp.ts';
import { UP_SERVICES as SERVICES } from '../../bin/commands/up.ts';
import { runCli } from '../helpers/cli.ts';
import { startUp } from '../helpers/up.ts';

test('wirelab up --json prints one line of endpoints once all listen, serves them, and exits 0 on SIGTERM within 2 s', async () => {
  const up = await startUp();
  try {
    assert.equal(up.endpoints.length, SERVICES.length);
    for (const e of up.endpoints) {
      assert.equal(e.host, '127.0.0.1');
      assert.ok(e.port > 0);
      assert.equal(typeof e.try, 'string');
      assert.ok(e.try.includes(String(e.port)), `${e.name}: the try command names the port`);
    }
    const tcp = up.endpoints.find((e) => e.name === 'tcp-echo')!;
    const c = await connectTcp({ port: tcp.port, framing: 'line' });
    await c.send('hi');
    assert.equal(String(await c.next()), 'hi');
    const udp = up.endpoints.find((e) => e.name === 'udp-echo')!;
    const u = await openUdp({ port: udp.port });
    assert.equal((await u.echo('hi')).seq, 0);
    await u.close();
    // An open connection must not hold the shutdown.
    const stopped = await up.stop();
    assert.equal(stopped.code, 0);
    assert.ok(stopped.ms < 2000, `stopped in ${stopped.ms} ms`);
    assert.equal((await c.closed).how === 'fin' || (await c.closed).how === 'rst', true);
  } finally {
    up.child.kill('SIGKILL');
  }
});

test('the default ports are the port base plus the IANA port; --port-base moves them all', () => {
  const ports = SERVICES.map((s) => [s.name, 7000 + s.wellKnownPort]);
  assert.deepEqual(Object.fromEntries(ports).__proto__, Object.prototype);
  assert.equal(SERVICES.find((s) => s.name === 'tcp-echo')!.wellKnownPort, 7);
});

test('a port already in use gives one line naming the port and the flag, exit 1, no stack trace', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  // tcp-echo listens on base + 7: choose the base that lands it on the blocked port.
  const r = await runCli(['up', '--port-base', String(port - 7)]);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, new RegExp(`port ${port} \\(tcp-echo\\) is already in use.*--port-base`));
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
});

test('a bad --port-base or an unknown service is a usage error', async () => {
  const bad = await runCli(['up', '--port-base', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--port-base must be an integer/);
  const unknown = await runCli(['up', '--only', 'gopher']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown service gopher/);
});
