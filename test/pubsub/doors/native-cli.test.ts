import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { createBroker, type Broker } from '../../../pubsub/broker/index.ts';
import { startPubsubTcpServer, startPubsubWsServer, type RunningPubsubTcpServer, type RunningPubsubWsServer } from '../../../pubsub/doors/native/index.ts';
import { CLI, runCli } from '../../helpers/cli.ts';

let broker: Broker;
let tcp: RunningPubsubTcpServer;
let ws: RunningPubsubWsServer;

before(async () => {
  broker = await createBroker({});
  tcp = await startPubsubTcpServer({ broker });
  ws = await startPubsubWsServer({ broker });
});
after(async () => {
  await tcp.close();
  await ws.close();
  await broker.close();
});

test('wirelab pub prints where each message went; sub --from earliest --count --json reads them back', async () => {
  const one = await runCli(['pub', 'cli.orders', 'hello', '--url', tcp.url, '--key', 'k', '--header', 'h=v', '--msg-id', 'm1']);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout.trim(), 'cli.orders[0]@0');
  const dup = await runCli(['pub', 'cli.orders', 'hello', '--url', tcp.url, '--msg-id', 'm1']);
  assert.match(dup.stdout, /cli\.orders\[0\]@0 \(duplicate/);
  const lines = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'pub', 'cli.orders', '-', '--url', ws.endpoint, '--acks', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => resolve({ code, out }));
    child.stdin.end('two\nthree\n');
  });
  assert.equal(lines.code, 0);
  assert.deepEqual(lines.out.trim().split('\n').sort(), ['cli.orders[0]@1', 'cli.orders[0]@2']);
  const sub = await runCli(['sub', 'cli.*', '--from', 'earliest', '--count', '3', '--json', '--url', tcp.url]);
  assert.equal(sub.code, 0, sub.stderr);
  const got = sub.stdout.trim().split('\n').map((l) => JSON.parse(l) as { offset: number; payload: string; key?: string; headers: Record<string, string> });
  assert.deepEqual(got.map((m) => [m.offset, m.payload]), [[0, 'hello'], [1, 'two'], [2, 'three']]);
  assert.equal(got[0]!.key, 'k');
  assert.deepEqual(got[0]!.headers, { h: 'v' });
});

test('wirelab sub waits for new messages; a pub from another process reaches it', async () => {
  const child = spawn(process.execPath, [CLI, 'sub', 'cli.live', '--count', '1', '--url', tcp.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  while (!err.includes('subscribed')) await new Promise((r) => setTimeout(r, 20));
  const pub = await runCli(['pub', 'cli.live', 'ping', '--url', tcp.url]);
  assert.equal(pub.code, 0);
  assert.equal(await exited, 0);
  assert.equal(out.trim(), 'cli.live[0]@0: ping');
});

test('usage errors exit 2; a refused publish exits 1 with its code; no server exits 1', async () => {
  for (const args of [
    ['pub', 't', 'x', '--acks', '2'],
    ['pub', 't', 'x', '--header', 'novalue'],
    ['sub', 't', '--mode', 'queue'],
    ['sub', 't', '--from', 'yesterday'],
    ['sub', 't', '--count', '0'],
    ['pub', 't', 'x', '--url', 'http://x'],
  ]) {
    const r = await runCli([...args, ...(args.includes('--url') ? [] : ['--url', tcp.url])]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  }
  const refused = await runCli(['pub', 'bad..topic', 'x', '--url', tcp.url]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /WL_ERR_PUBSUB_INVALID/);
  const closedPort = tcp.port === 1 ? 2 : 1;
  const none = await runCli(['pub', 't', 'x', '--url', `tcp://127.0.0.1:${closedPort}`]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /cannot connect/);
});
