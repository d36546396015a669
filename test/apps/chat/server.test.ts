import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { connectChat, type ChatClient } from '../../../apps/chat/client.ts';
import { ChatCodes, type ServerMessage } from '../../../apps/chat/protocol.ts';
import { startChatServer, type RunningChatServer } from '../../../apps/chat/server/index.ts';

/** A raw WebSocket that collects every server message (JSON), for the bad-input cases. */
async function rawSocket(url: string): Promise<{ ws: WebSocket; got: ServerMessage[]; closed: Promise<number>; next(match: (m: ServerMessage) => boolean): Promise<ServerMessage> }> {
  const ws = new WebSocket(url);
  const got: ServerMessage[] = [];
  const waiters: { match(m: ServerMessage): boolean; resolve(m: ServerMessage): void }[] = [];
  ws.on('error', () => {});
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as ServerMessage;
    got.push(m);
    for (const w of [...waiters]) if (w.match(m)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    got,
    closed,
    next: (match) => {
      const seen = got.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

/** Resolves once `c` holds a stored event with this text in `room` (already, or when it arrives). */
function holds(c: ChatClient, room: string, text: string, timeoutMs = 10_000): Promise<unknown> {
  if (c.rooms.get(room)?.events.some((e) => e.text === text)) return Promise.resolve();
  return c.waitFor((m) => m.type === 'event' && m.room === room && m.text === text, timeoutMs);
}

const isType = <T extends ServerMessage['type']>(type: T, room?: string) => (m: ServerMessage): m is Extract<ServerMessage, { type: T }> =>
  m.type === type && (room === undefined || ('room' in m && m.room === room));

describe('chat server', () => {
  let server: RunningChatServer;
  const clients: ChatClient[] = [];
  const client = async (name: string): Promise<ChatClient> => {
    const c = await connectChat({ url: server.endpoint, name, reconnectMinMs: 20 });
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startChatServer({ heartbeatMs: 0, ratePerSecond: 20, rateBurst: 20, maxRoomsPerConnection: 4, maxBadFrames: 5 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('join, presence, messages both ways with ids and the sent receipt', async () => {
    const ana = await client('ana');
    const ben = await client('ben');
    const a = await ana.join('lobby');
    assert.equal(a.owner, 'ana', 'the first joiner owns the room');
    assert.equal(a.events[0]?.kind, 'created');
    const sawBen = ana.waitFor((m) => m.type === 'presence' && m.user === 'ben' && m.state === 'join');
    await ben.join('lobby');
    assert.deepEqual((await sawBen as Extract<ServerMessage, { type: 'presence' }>).online, ['ana', 'ben']);
    const got = ben.waitFor((m) => m.type === 'event' && m.kind === 'msg' && m.text === 'hi ben');
    const offset = await ana.send('lobby', 'hi ben');
    const ev = await got as Extract<ServerMessage, { type: 'event' }>;
    assert.equal(ev.offset, offset);
    assert.equal(ev.user, 'ana');
    const back = ana.waitFor((m) => m.type === 'event' && m.text === 'hi ana');
    await ben.send('lobby', 'hi ana');
    await back;
    // receipts: ben has seen ana's message -> ana is told.
    const receipt = ana.waitFor((m) => m.type === 'receipt' && m.user === 'ben' && m.state === 'seen');
    ben.raw({ type: 'receipt', room: 'lobby', offset, state: 'seen' });
    assert.equal((await receipt as Extract<ServerMessage, { type: 'receipt' }>).offset, offset);
    const left = ana.waitFor((m) => m.type === 'presence' && m.user === 'ben' && m.state === 'leave');
    ben.leave('lobby');
    assert.deepEqual((await left as Extract<ServerMessage, { type: 'presence' }>).online, ['ana']);
  });

  test('typing is relayed and never stored; edits and deletes are stored events; history pages', async () => {
    const cy = await client('cy');
    const di = await client('di');
    await cy.join('typing');
    await di.join('typing');
    let typings = 0;
    di.on((m) => void (m.type === 'typing' && m.on && typings++));
    const typing = di.waitFor((m) => m.type === 'typing' && m.user === 'cy' && m.on);
    for (let i = 0; i < 5; i++) cy.raw({ type: 'typing', room: 'typing', on: true });
    await typing;
    const firstArrived = di.waitFor((m) => m.type === 'event' && m.text === 'one');
    const first = await cy.send('typing', 'one');
    await firstArrived;
    assert.equal(typings, 1, 'five typing frames in a burst are relayed once (typingIntervalMs)');
    await cy.send('typing', 'two');
    const edited = di.waitFor((m) => m.type === 'event' && m.kind === 'edit' && m.ref === first);
    cy.raw({ type: 'edit', room: 'typing', ref: first, text: 'uno' });
    await edited;
    const forbidden = di.waitFor((m) => m.type === 'error' && m.code === ChatCodes.FORBIDDEN);
    di.raw({ type: 'delete', room: 'typing', ref: first });
    await forbidden;
    const info = await server.broker.engine.topic('chat.room.typing');
    const records = await server.broker.engine.read('chat.room.typing', 0, 0, 100);
    const kinds = records.map((r) => (JSON.parse(r.payload.toString()) as { kind: string }).kind);
    assert.deepEqual(kinds, ['created', 'msg', 'msg', 'edit'], 'typing left no record');
    assert.equal(info?.partitionInfo[0]?.nextOffset, 4);
    const page = di.waitFor(isType('history', 'typing'));
    di.raw({ type: 'history', room: 'typing', before: 3, limit: 2 });
    const h = await page;
    assert.deepEqual(h.events.map((e) => e.offset), [1, 2]);
  });

  test('recovery after the socket is reset: every missed message once, none twice', async () => {
    const eve = await client('eve');
    const fay = await client('fay');
    await eve.join('recover');
    await fay.join('recover');
    await eve.send('recover', 'before 1');
    await holds(fay, 'recover', 'before 1');
    fay.socket.terminate(); // a reset: no close frame
    await new Promise((r) => setTimeout(r, 30));
    const sent: number[] = [];
    for (let i = 0; i < 15; i++) sent.push(await eve.send('recover', `missed ${i}`));
    await holds(fay, 'recover', 'missed 14');
    const live = fay.waitFor((m) => m.type === 'event' && m.text === 'after');
    await eve.send('recover', 'after');
    await live;
    const texts = fay.rooms.get('recover')!.events.filter((e) => e.kind === 'msg').map((e) => e.text);
    assert.deepEqual(texts, ['before 1', ...sent.map((_, i) => `missed ${i}`), 'after']);
    assert.equal(fay.duplicates, 0);
    assert.ok(fay.reconnects >= 1);
    const offsets = fay.rooms.get('recover')!.events.map((e) => e.offset);
    assert.deepEqual(offsets, offsets.map((_, i) => i), 'offsets 0..n, no gap');
  });

  test('rate limit per user: a clear error, then accepted again', async () => {
    const gil = await client('gil');
    await gil.join('rate');
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => gil.send('rate', `flood ${i}`)));
    const refused = results.filter((r) => r.status === 'rejected');
    assert.ok(refused.length >= 5, `${refused.length} refused`);
    for (const r of refused) assert.equal((r as PromiseRejectedResult).reason.code, ChatCodes.RATE);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok((await gil.send('rate', 'calm again')) > 0);
  });

  test('bad input: malformed JSON, oversized frame and message, control characters, too many rooms; the server keeps serving', async () => {
    const raw = await rawSocket(server.endpoint);
    raw.ws.send('{not json');
    assert.ok(await raw.next((m) => m.type === 'error' && m.code === ChatCodes.INVALID));
    raw.ws.send(JSON.stringify({ type: 'hello', name: 'bad\u0007name' }));
    assert.ok(await raw.next((m) => m.type === 'error' && m.code === ChatCodes.NAME));
    raw.ws.send(JSON.stringify({ type: 'hello', name: 'x'.repeat(33) }));
    assert.ok(await raw.next((m) => m.type === 'error' && m.code === ChatCodes.NAME && m.limit === 'maxNameChars'));
    raw.ws.send(JSON.stringify({ type: 'hello', name: 'hal' }));
    await raw.next(isType('welcome'));
    raw.ws.send(JSON.stringify({ type: 'join', room: 'Bad Room!' }));
    assert.ok(await raw.next((m) => m.type === 'error' && m.code === ChatCodes.ROOM));
    raw.ws.close();

    const many = await client('ivy');
    for (let i = 0; i < 4; i++) await many.join(`r${i}`);
    await assert.rejects(many.join('r4'), (e: Error & { code?: string; limit?: string }) => e.code === ChatCodes.LIMIT && e.limit === 'maxRoomsPerConnection');
    await assert.rejects(many.send('r0', 'y'.repeat(5000)), (e: Error & { code?: string; limit?: string }) => e.limit === 'maxMessageChars');

    const big = await rawSocket(server.endpoint);
    big.ws.send('x'.repeat(40 * 1024));
    assert.equal(await big.closed, 1009);

    // A connection that keeps sending garbage is closed with 1008 after maxBadFrames.
    const junk = await rawSocket(server.endpoint);
    for (let i = 0; i < 10; i++) junk.ws.send('junk');
    assert.equal(await junk.closed, 1008);

    // The others are still served.
    const ok = await client('jo');
    await ok.join('r0');
    assert.ok((await many.send('r0', 'still here')) >= 0);
    assert.ok(server.stats.closedBadFrames >= 1);
  });

  test('joining 10,000 rooms from one connection: refused by the limits, the connection closed, the server keeps serving', async () => {
    const raw = await rawSocket(server.endpoint);
    raw.ws.send(JSON.stringify({ type: 'hello', name: 'greedy' }));
    await raw.next(isType('welcome'));
    for (let i = 0; i < 10_000 && raw.ws.readyState === WebSocket.OPEN; i++) raw.ws.send(JSON.stringify({ type: 'join', room: `many-${i}` }));
    assert.equal(await raw.closed, 1008);
    const errors = raw.got.filter((m) => m.type === 'error');
    assert.ok(errors.some((m) => m.type === 'error' && (m.limit === 'maxRoomsPerConnection' || m.limit === 'maxFramesPerSecond')));
    assert.ok(raw.got.filter((m) => m.type === 'joined').length <= 4);
    const ok = await client('after-greedy');
    assert.equal((await ok.join('calm')).owner, 'after-greedy');
  });

  test('moderation: only the owner mutes and kicks; a kicked user cannot rejoin', async () => {
    const kim = await client('kim');
    const lou = await client('lou');
    await kim.join('mod');
    await lou.join('mod');
    lou.raw({ type: 'kick', room: 'mod', user: 'kim' });
    assert.ok(await lou.waitFor((m) => m.type === 'error' && m.code === ChatCodes.FORBIDDEN));
    kim.raw({ type: 'mute', room: 'mod', user: 'lou', ms: 60_000 });
    await lou.waitFor((m) => m.type === 'event' && m.kind === 'mute' && m.target === 'lou');
    await assert.rejects(lou.send('mod', 'hello?'), (e: Error & { code?: string }) => e.code === ChatCodes.MUTED);
    const left = lou.waitFor((m) => m.type === 'left' && m.room === 'mod');
    kim.raw({ type: 'kick', room: 'mod', user: 'lou' });
    await left;
    await assert.rejects(lou.join('mod'), (e: Error & { code?: string }) => e.code === ChatCodes.KICKED);
  });

  test('long polling and SSE + POST: the same protocol; unknown connections 404, oversized posts 413', async () => {
    const base = server.url.replace(/\/$/, '');
    const opened = (await (await fetch(`${base}/poll`, { method: 'POST' })).json()) as { conn: string };
    const post = (conn: string, body: string) => fetch(`${base}/send?conn=${conn}`, { method: 'POST', body });
    assert.equal((await post(opened.conn, JSON.stringify({ type: 'hello', name: 'pol' }))).status, 204);
    assert.equal((await post(opened.conn, '{broken')).status, 204);
    const batch = (await (await fetch(`${base}/poll?conn=${opened.conn}`)).json()) as ServerMessage[];
    assert.deepEqual(batch.map((m) => m.type), ['welcome', 'error']);
    assert.equal((await post('0'.repeat(32), '{}')).status, 404);
    assert.equal((await fetch(`${base}/poll?conn=nope`)).status, 404);
    assert.equal((await post(opened.conn, 'x'.repeat(40 * 1024))).status, 413);

    // SSE: the first event names the connection; messages posted to it are answered in the stream.
    const ctl = new AbortController();
    const sse = await fetch(`${base}/sse`, { signal: ctl.signal });
    assert.equal(sse.headers.get('content-type'), 'text/event-stream');
    const reader = sse.body!.getReader();
    let text = '';
    const until = async (re: RegExp): Promise<RegExpExecArray> => {
      for (;;) {
        const m = re.exec(text);
        if (m) return m;
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${text}`);
        text += Buffer.from(value).toString();
      }
    };
    const conn = (await until(/event: conn\ndata: \{"conn":"([0-9a-f]{32})"\}/))[1]!;
    await post(conn, JSON.stringify({ type: 'hello', name: 'sse-user' }));
    await until(/"type":"welcome","name":"sse-user","transport":"sse"/);
    ctl.abort();
  });

  test('serves the page and its script with a CSP; other paths 404', async () => {
    const page = await fetch(server.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await page.text(), /<script src="\/chat.js">/);
    assert.equal((await fetch(new URL('/chat.js', server.url))).status, 200);
    assert.equal((await fetch(new URL('/nope', server.url))).status, 404);
  });
});
