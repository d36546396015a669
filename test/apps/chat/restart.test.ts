import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectChat, type ChatClient } from '../../../apps/chat/client.ts';
import { startChatServer } from '../../../apps/chat/server/index.ts';

/** Resolves once `c` holds a stored event with this text in `room` (already, or when it arrives). */
function holds(c: ChatClient, room: string, text: string, timeoutMs = 10_000): Promise<unknown> {
  if (c.rooms.get(room)?.events.some((e) => e.text === text)) return Promise.resolve();
  return c.waitFor((m) => m.type === 'event' && m.room === room && m.text === text, timeoutMs);
}

test('the server restarts on its durable log: a client reconnects and gets what it missed, once each', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-chat-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let server = await startChatServer({ dataDir: dir, heartbeatMs: 0 });
  const port = server.port;
  const ana = await connectChat({ url: server.endpoint, name: 'ana', reconnectMinMs: 50, reconnectMaxMs: 200 });
  t.after(() => ana.close());
  await ana.join('lobby');
  await ana.send('lobby', 'before the restart');
  await server.close();
  server = await startChatServer({ dataDir: dir, port, heartbeatMs: 0 });
  t.after(() => server.close());
  const ben = await connectChat({ url: server.endpoint, name: 'ben' });
  t.after(() => ben.close());
  const b = await ben.join('lobby');
  assert.equal(b.owner, 'ana', 'the owner is read back from the log');
  for (let i = 0; i < 5; i++) await ben.send('lobby', `after ${i}`);
  await holds(ana, 'lobby', 'after 4');
  const texts = ana.rooms.get('lobby')!.events.filter((e) => e.kind === 'msg').map((e) => e.text);
  assert.deepEqual(texts, ['before the restart', 'after 0', 'after 1', 'after 2', 'after 3', 'after 4']);
  assert.equal(ana.duplicates, 0);
});

test('restarted on an empty (in-memory) log: the client is told it was not recovered and starts over', async (t) => {
  let server = await startChatServer({ heartbeatMs: 0 });
  const port = server.port;
  const ana = await connectChat({ url: server.endpoint, name: 'ana', reconnectMinMs: 50, reconnectMaxMs: 200 });
  t.after(() => ana.close());
  await ana.join('lobby');
  for (let i = 0; i < 3; i++) await ana.send('lobby', `old ${i}`);
  const joined = ana.waitFor((m) => m.type === 'joined' && m.room === 'lobby', 10_000);
  const synced = ana.waitFor((m) => m.type === 'synced' && m.room === 'lobby', 10_000);
  await server.close();
  server = await startChatServer({ port, heartbeatMs: 0 });
  t.after(() => server.close());
  const j = await joined;
  assert.equal(j.type === 'joined' && j.recovered, false);
  await synced;
  const arrived = ana.waitFor((m) => m.type === 'event' && m.text === 'new world');
  await ana.send('lobby', 'new world');
  await arrived;
  assert.deepEqual(ana.rooms.get('lobby')!.events.map((e) => e.text ?? e.kind), ['created', 'new world']);
});
