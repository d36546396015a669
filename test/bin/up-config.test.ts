import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { request } from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { CONFIGURABLE, loadUpConfig, startOptionsOf } from '../../bin/commands/up-config.ts';
import { UP_SERVICES } from '../../bin/commands/up.ts';
import { NOOP_TRACER } from '../../core/trace/index.ts';
import { runCli } from '../helpers/cli.ts';
import { startUp } from '../helpers/up.ts';

/** Connects, reads the greeting, sends each line and returns every reply line (or 'closed'). */
async function dialog(port: number, lines: string[]): Promise<string[]> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  const replies: string[] = [];
  let buf = '';
  let wake: (() => void) | null = null;
  let closed = false;
  s.on('data', (d) => {
    buf += d.toString();
    wake?.();
  });
  s.on('close', () => {
    closed = true;
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (!buf.includes('\r\n') && !closed) await new Promise<void>((r) => (wake = r));
    const i = buf.indexOf('\r\n');
    if (i === -1) return 'closed';
    const l = buf.slice(0, i);
    buf = buf.slice(i + 2);
    return l;
  };
  await next();
  for (const l of lines) {
    s.write(`${l}\r\n`);
    replies.push(await next());
  }
  s.destroy();
  return replies;
}

test('--config and --set: names checked before anything starts, values merged, the file read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-upcfg-'));
  try {
    const file = join(dir, 'wirelab.json');
    await writeFile(file, JSON.stringify({ servers: { ftp: { pasvPortMin: 30000, pasvPortMax: 30009 }, pop3: { chaos: { rules: [{ command: 'STAT' }] } } } }));
    const c = await loadUpConfig(file, ['ftp.requireTls=true', 'ftp.pasvPortMax=30019', 'imap.maxConnections=5']);
    assert.deepEqual(c, { ftp: { pasvPortMin: 30000, pasvPortMax: 30019, requireTls: true }, pop3: { chaos: { rules: [{ command: 'STAT' }] } }, imap: { maxConnections: 5 } });
    await assert.rejects(loadUpConfig(undefined, ['ftp.pasvPortMn=1']), /ftp has no option "pasvPortMn"; its options: .*pasvPortMin/);
    await assert.rejects(loadUpConfig(undefined, ['tcp-eco.maxConnections=1']), /service "tcp-eco" takes no options here/);
    // The pub/sub doors' and the signaling server's options are flat on the command line, nested where the server takes them.
    const flatSets = await loadUpConfig(undefined, ['mqtt.maxConnections=10', 'webrtc-signal.maxRooms=2', 'webrtc-signal.heartbeatMs=0']);
    assert.deepEqual(startOptionsOf('mqtt', flatSets.mqtt), { limits: { maxConnections: 10 } });
    assert.deepEqual(startOptionsOf('webrtc-signal', flatSets['webrtc-signal']), { heartbeatMs: 0, signaling: { maxRooms: 2 } });
    await assert.rejects(loadUpConfig(undefined, ['ftp']), /SERVICE\.OPTION=VALUE/);
    await writeFile(file, '{ "servers": ');
    await assert.rejects(loadUpConfig(file), (e: Error & { code?: string }) => e.code === 'WL_ERR_USAGE' && /--config .*wirelab\.json/.test(e.message));
    const bad = await runCli(['up', '--port-base', '0', '--set', 'pop3.maxConections=3']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /pop3 has no option "maxConections"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('wirelab up --set: a server starts with the options given, and the control API changes its chaos while it runs', async () => {
  const up = await startUp(['--port-base', '0', '--only', 'pop3,ftp', '--set', 'pop3.allowInsecureAuth=true', '--set', 'pop3.chaos={"rules":[{"command":"NOOP","times":1}]}', '--set', 'ftp.requireTls=true']);
  try {
    const pop3 = up.endpoints.find((e) => e.name === 'pop3')!;
    const ftp = up.endpoints.find((e) => e.name === 'ftp')!;
    const control = up.endpoints.find((e) => e.name === 'impair-control')!;
    // allowInsecureAuth reached the server (USER is refused before STLS otherwise); the chaos rule fires once.
    const [user, pass, first, second] = await dialog(pop3.port, ['USER demo', 'PASS demo', 'NOOP', 'NOOP']);
    assert.match(`${user} | ${pass}`, /^\+OK .* \| \+OK /);
    assert.deepEqual([first, second], ['-ERR [SYS/TEMP] chaos: injected failure', '+OK']);
    // requireTls: a login in clear is refused with 534.
    assert.match((await dialog(ftp.port, ['USER demo']))[0]!, /^534 /);
    const servers = (await (await fetch(`${control.url}/servers`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(servers).sort(), ['ftp', 'pop3']);
    const set = await fetch(`${control.url}/servers/ftp/chaos`, { method: 'POST', body: JSON.stringify({ rules: [{ command: 'SYST', code: 502 }] }) });
    assert.equal(set.status, 200);
    assert.match((await dialog(ftp.port, ['SYST']))[0]!, /^502 chaos: injected failure/);
    const refused = await fetch(`${control.url}/servers/ftp/chaos`, { method: 'POST', body: JSON.stringify({ rules: [{ command: 'SYST', code: 'NO' }] }) });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: string }).error, /400 to 599/);
    assert.equal((await fetch(`${control.url}/servers/nope/chaos`)).status, 404);
    assert.equal((await up.stop()).code, 0);
  } finally {
    up.child.kill('SIGKILL');
  }
});

test('every service of wirelab up takes options, and each option reaches the server, whose own check names it', async () => {
  // A value of the wrong type for each settable option: the server must refuse it with an InvalidOptionError naming that
  // option (proof the option arrives where the server reads it, and that the server checks it). Nothing listens.
  const dir = await mkdtemp(join(tmpdir(), 'wl-upcfg-all-'));
  const saved = { pubsub: process.env.WIRELAB_PUBSUB_DIR, data: process.env.WIRELAB_DATA_DIR };
  process.env.WIRELAB_PUBSUB_DIR = join(dir, 'pubsub');
  process.env.WIRELAB_DATA_DIR = join(dir, 'data');
  const missed: string[] = [];
  try {
    for (const entry of UP_SERVICES) {
      const keys = CONFIGURABLE[entry.name];
      if (!keys) {
        missed.push(`${entry.name}: not configurable`);
        continue;
      }
      for (const key of keys) {
        try {
          const server = await entry.start({ ...startOptionsOf(entry.name, { [key]: 'wrong' }), host: '127.0.0.1', port: 0, tracer: NOOP_TRACER } as never);
          await server.close();
          missed.push(`${entry.name}.${key}: accepted "wrong"`);
        } catch (err) {
          const e = err as Error & { code?: string; option?: string };
          const named = e.option === key || e.option?.endsWith(`.${key}`);
          if (e.code !== 'WL_ERR_INVALID_OPTION' || !named) missed.push(`${entry.name}.${key}: ${e.code} ${e.message}`);
        }
      }
    }
  } finally {
    process.env.WIRELAB_PUBSUB_DIR = saved.pubsub;
    process.env.WIRELAB_DATA_DIR = saved.data;
    if (saved.pubsub === undefined) delete process.env.WIRELAB_PUBSUB_DIR;
    if (saved.data === undefined) delete process.env.WIRELAB_DATA_DIR;
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(missed, []);
  // From the command line, such a value is a usage error (exit 2) naming the service and the option.
  const bad = await runCli(['up', '--port-base', '0', '--only', 'ws', '--set', 'ws.maxPayload="big"']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /wirelab up: ws: .*maxPayload/);
});

/** The close code a WebSocket ends with after sending `bytes` bytes (the server refusing a message too big). */
function closeAfter(url: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('error', () => undefined);
    ws.on('open', () => ws.send(Buffer.alloc(bytes, 0x61)));
    ws.on('close', (code) => resolve(code));
    setTimeout(() => reject(new Error(`no close from ${url}`)), 10_000).unref();
  });
}

test('wirelab up --config/--set: limits of the TCP, UDP, HTTP, WebSocket, signaling and pub/sub HTTP servers take effect', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-upcfg-eff-'));
  const file = join(dir, 'wirelab.json');
  await writeFile(file, JSON.stringify({ servers: { http: { allowTrace: true, maxBodyBytes: 10 }, ws: { maxPayload: 16 }, 'tcp-echo': { maxConnections: 1 } } }));
  const up = await startUp(['--port-base', '0', '--only', 'tcp-echo,udp-echo,http,ws,webrtc-signal,pubsub-http', '--config', file, '--set', 'udp-echo.maxEchoPerSecond=1', '--set', 'webrtc-signal.maxMessageBytes=64', '--set', 'pubsub-http.maxBodyBytes=10']);
  try {
    const at = (name: string) => up.endpoints.find((e) => e.name === name)!;
    // tcp-echo: a second connection past maxConnections 1 is closed at once, the first still echoes.
    const first = net.connect(at('tcp-echo').port, '127.0.0.1');
    first.on('error', () => undefined);
    await new Promise((r) => first.once('connect', r));
    const second = net.connect(at('tcp-echo').port, '127.0.0.1');
    second.on('error', () => undefined);
    await new Promise((r) => second.once('close', r));
    first.write('still here\n');
    const echoed = await new Promise<string>((r) => first.once('data', (d) => r(d.toString())));
    assert.equal(echoed, 'still here\n');
    first.destroy();
    // udp-echo: 10 datagrams at once, at most one echo a second: fewer than 10 come back.
    const sock = dgram.createSocket('udp4');
    sock.on('error', () => undefined);
    let echoes = 0;
    sock.on('message', () => echoes++);
    for (let i = 0; i < 10; i++) sock.send(`d${i}`, at('udp-echo').port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    sock.close();
    assert.ok(echoes >= 1 && echoes <= 2, `${echoes} echoes`);
    // http: TRACE allowed (405 by default), a body over 10 bytes refused with 413.
    const http = at('http').url!;
    const trace = await new Promise<number>((resolve, reject) => {
      const req = request(`${http}/anything`, { method: 'TRACE' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(trace, 200);
    assert.equal((await fetch(`${http}/anything`, { method: 'POST', body: 'x'.repeat(100) })).status, 413);
    // pubsub-http: its own body limit (nested under limits).
    assert.equal((await fetch(`${at('pubsub-http').url}/topics/demo`, { method: 'POST', body: 'x'.repeat(100) })).status, 413);
    // ws: a 100-byte message over maxPayload 16 closes with 1009; the signaling path's limit is maxMessageBytes.
    assert.equal(await closeAfter(`${at('ws').url}/echo`, 100), 1009);
    assert.equal(await closeAfter(at('webrtc-signal').url!, 100), 1009);
    assert.equal((await up.stop()).code, 0);
  } finally {
    up.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
