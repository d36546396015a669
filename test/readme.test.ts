import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI } from './helpers/cli.ts';
import { pathToFileURL } from 'node:url';
import { startSignalingServer } from '../servers/webrtc/index.ts';
import { CHECKOUT, node, readmeBlock, tempProject } from './helpers/project.ts';
import { startPeer } from './helpers/webrtc-cli.ts';

test("the README's own-lab example, taken from README.md, runs as a lab from a folder outside the checkout and passes", async (t) => {
  const block = await readmeBlock('own-lab');
  const code = /^```ts\n([\s\S]*?)```\n$/.exec(block)?.[1];
  assert.ok(code, 'the own-lab block is one ```ts code block');
  assert.equal(code, await readFile(join(CHECKOUT, 'examples', 'my-lab.ts'), 'utf8'), 'examples/my-lab.ts is the README example');
  const project = await tempProject(false);
  t.after(() => project.remove());
  await writeFile(join(project.dir, 'my-lab.ts'), code);
  const r = await node([CLI, 'lab', './my-lab.ts', '--json'], project.dir, 90_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const result = JSON.parse(r.stdout) as { id: string; ok: boolean; claims: { held: number; total: number } };
  assert.equal(result.id, 'nagle-delayed-ack');
  assert.deepEqual(result.claims, { held: 2, total: 2 });
});

test("the README's own-peer script (connectSignaling + createWebRtcPeer) calls a wirelab webrtc peer and gets its reply", async (t) => {
  const code = /^```ts\n([\s\S]*?)```\n$/.exec(await readmeBlock('webrtc-peer'))?.[1];
  assert.ok(code, 'the webrtc-peer block is one ```ts code block');
  const server = await startSignalingServer({ port: 0 });
  t.after(() => server.close());
  const cli = startPeer(['--url', server.signalUrl, '--room', 'demo']);
  t.after(() => cli.child.kill('SIGKILL'));
  const [, cliId] = await cli.wait('err', /joined room demo at \S+ as ([A-Za-z0-9_-]+)/);
  const project = await tempProject(true);
  t.after(() => project.remove());
  await writeFile(join(project.dir, 'my-peer.mts'), code);
  const tsx = pathToFileURL(join(CHECKOUT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const script = node(['--conditions=wirelab-source', '--import', tsx, 'my-peer.mts', server.signalUrl], project.dir, 90_000);
  await cli.wait('out', /^\S+ chat: hello from werift$/m);
  cli.child.stdin.write('hi back\n');
  const r = await script;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${cliId} said: hi back\n`);
  await cli.wait('err', /hung up|left the room/);
});
