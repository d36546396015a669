import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectSignaling } from '../../clients/signaling.ts';
import { createWebRtcPeer } from '../../clients/webrtc.ts';
import { startSignalingServer } from '../../servers/webrtc/index.ts';
import { runCli } from '../helpers/cli.ts';
import { startPeer } from '../helpers/webrtc-cli.ts';
import { startUp } from '../helpers/up.ts';

test('two wirelab webrtc peers in one room: each stdin line arrives on the other side, over a data channel', async (t) => {
  const server = await startSignalingServer({ port: 0 });
  t.after(() => server.close());
  const a = startPeer(['--url', server.signalUrl, '--room', 'cli']);
  t.after(() => a.child.kill('SIGKILL'));
  const [, aId] = await a.wait('err', /joined room cli at \S+ as (\S+); peers already there: none/);
  const b = startPeer(['--url', server.signalUrl, '--room', 'cli']);
  t.after(() => b.child.kill('SIGKILL'));
  const [, bId] = await b.wait('err', new RegExp(`joined room cli at \\S+ as (\\S+); peers already there: ${aId}`));
  await Promise.all([a.wait('err', /connected to .*channel chat open, peer to peer over udp: 127\.0\.0\.1:\d+/), b.wait('err', /connected to .*channel chat open/)]);
  a.child.stdin.write('hello from a\n');
  b.child.stdin.write('hello from b\n');
  await b.wait('out', new RegExp(`^${aId} chat: hello from a$`, 'm'));
  await a.wait('out', new RegExp(`^${bId} chat: hello from b$`, 'm'));
  // The signaling server relayed one negotiation and nothing else: the lines went peer to peer.
  const relayed = server.signaling.stats.relayed;
  assert.equal(relayed.offer, 1);
  assert.equal(relayed.answer, 1);
  assert.deepEqual(Object.keys(relayed).filter((k) => !['offer', 'answer', 'candidate', 'bye'].includes(k)), []);
  // End of stdin hangs up: a says bye and leaves, exit 0; b sees it go.
  a.child.stdin.end();
  assert.equal(await a.exited, 0, a.err());
  await b.wait('err', new RegExp(`${aId} (hung up|left the room)`));
  b.child.stdin.end();
  assert.equal(await b.exited, 0, b.err());
});

test('lines piped in before anyone answers wait for the first peer; a werift peer of clients/webrtc.ts receives them', async (t) => {
  const server = await startSignalingServer({ port: 0 });
  t.after(() => server.close());
  // The werift peer is in the room first: the CLI (the newcomer) calls it, with the page's channels.
  const signal = await connectSignaling({ url: server.signalUrl, room: 'demo' });
  // The CLI child starts tsx and werift before it can send its offer: under load (CI's busy 2-core machine) that took
  // longer than the default 10 s wait for an offer. The wait is a hang guard, not a claim.
  const peer = createWebRtcPeer({ connectTimeoutMs: 60_000 });
  t.after(async () => {
    await peer.close();
    await signal.close();
  });
  const cli = startPeer(['--url', server.signalUrl]);
  t.after(() => cli.child.kill('SIGKILL'));
  cli.child.stdin.end('one\ntwo\n');
  await peer.answer(signal);
  const chat = await peer.channel('chat');
  assert.equal(String((await chat.next(20_000)).data), 'one');
  assert.equal(String((await chat.next(20_000)).data), 'two');
  assert.ok(peer.channels.has('unreliable'), 'the CLI made the page\'s second channel too');
  assert.equal(await cli.exited, 0, cli.err());
});

test('no signaling server: one line naming the URL, exit 1; bad flags: exit 2', async () => {
  const down = await runCli(['webrtc', '--url', 'ws://127.0.0.1:9/signal', '--timeout-ms', '2000']);
  assert.equal(down.code, 1);
  assert.equal(down.stderr.trim().split('\n').length, 1, down.stderr);
  assert.match(down.stderr, /could not join room demo at ws:\/\/127\.0\.0\.1:9\/signal/);
  for (const args of [['--room', 'no spaces'], ['--url', 'http://x/signal'], ['--url', 'ws://x/signal', '--port-base', '7000']]) {
    const r = await runCli(['webrtc', ...args]);
    assert.equal(r.code, 2, args.join(' '));
  }
});

test("wirelab up's webrtc-signal entry gives the /signal URL, the browser page's URL (which serves the page) and the peer command", async (t) => {
  const up = await startUp(['--port-base', '0', '--only', 'http,webrtc-signal']);
  t.after(() => up.child.kill('SIGKILL'));
  const e = up.endpoints.find((x) => x.name === 'webrtc-signal')!;
  const http = up.endpoints.find((x) => x.name === 'http')!;
  assert.equal(e.url, `ws://127.0.0.1:${e.port}/signal`);
  assert.equal(e.page, `${http.url}/webrtc?signal=${e.url}&room=demo`);
  assert.equal(e.peer, `npx wirelab webrtc --url ${e.url} --room demo`);
  const page = await fetch(String(e.page));
  assert.equal(page.status, 200);
  const html = await page.text();
  for (const label of ["createDataChannel('chat')", "createDataChannel('unreliable'"]) assert.ok(html.includes(label), label);
  // The URL works: a signaling client joins through it.
  const signal = await connectSignaling({ url: e.url, room: 'demo' });
  assert.ok(signal.id);
  await signal.close();
  assert.equal((await up.stop()).code, 0);
});
