/**
 * Chat accounts (issue 15): registered names need their password (scrypt hash, the pub/sub layer's users) or token;
 * guests take any other name unless allowGuests is off; credentials on a connection without TLS are refused unless
 * allowInsecureAuth (the client refuses to send them first); secrets never reach a trace; a connection that keeps
 * guessing is closed.
 */
import assert from 'node:assert/strict';
import { rootCertificates } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { connectChat } from '../../../apps/chat/client.ts';
import { ChatCodes, type ServerMessage } from '../../../apps/chat/protocol.ts';
import { startChatServer, type RunningChatServer } from '../../../apps/chat/server/index.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { hashPassword } from '../../../pubsub/broker/auth.ts';

const PASSWORD = 'correct horse battery';
const TOKEN = 'tok-7f3a9c2e51d04b88';
const code = (want: string) => (e: Error & { code?: string }): boolean => {
  assert.equal(e.code, want, e.message);
  return true;
};

describe('chat accounts', () => {
  let open: RunningChatServer;
  let strict: RunningChatServer;
  /** https:// and wss:// (tls: true), accounts, and no allowInsecureAuth. */
  let secure: RunningChatServer;
  const sink = new MemorySink();
  before(async () => {
    // A cheap scrypt cost: the check is the same code, the test does not need 50 ms per hash.
    const users = [{ name: 'ana', passwordHash: await hashPassword(PASSWORD, { N: 1024 }) }, { name: 'bot', token: TOKEN }];
    const tracer = createTracer([sink]);
    [open, strict, secure] = await Promise.all([
      startChatServer({ users, allowInsecureAuth: true, heartbeatMs: 0, tracer }),
      startChatServer({ users, heartbeatMs: 0, tracer }),
      startChatServer({ users, heartbeatMs: 0, tracer, tls: true }),
    ]);
  });
  after(async () => {
    await Promise.all([open.close(), strict.close(), secure.close()]);
  });

  test('a registered name signs in with its password or token; a guest takes another name', async () => {
    const ana = await connectChat({ url: open.endpoint, name: 'ana', password: PASSWORD, allowInsecureAuth: true });
    const welcome = { auth: '' };
    ana.on((m) => void (m.type === 'welcome' && (welcome.auth = m.auth)));
    await ana.join('lobby');
    // The token names its user: no name given.
    const bot = await connectChat({ url: open.endpoint, token: TOKEN, allowInsecureAuth: true, transport: 'sse' });
    assert.equal(bot.name, 'bot');
    await bot.join('lobby');
    const zed = await connectChat({ url: open.endpoint, name: 'zed' });
    const room = await zed.join('lobby');
    assert.deepEqual(room.online, ['ana', 'bot', 'zed']);
    // A reconnect signs in again with the same password (kept by the client, not re-asked).
    const back = ana.waitFor((m) => m.type === 'welcome');
    ana.socket.terminate();
    assert.equal(((await back) as Extract<ServerMessage, { type: 'welcome' }>).auth, 'password');
    assert.equal(welcome.auth, 'password');
    for (const c of [ana, bot, zed]) c.close();
  });

  test('a wrong password, no password, a token for another name: one clear error, and the name stays free', async () => {
    await assert.rejects(connectChat({ url: open.endpoint, name: 'ana', password: 'wrong', allowInsecureAuth: true, reconnect: false }), code(ChatCodes.AUTH));
    await assert.rejects(connectChat({ url: open.endpoint, name: 'ana', reconnect: false }), (e: Error & { code?: string }) => {
      assert.equal(e.code, ChatCodes.AUTH);
      assert.match(e.message, /registered name/);
      return true;
    });
    await assert.rejects(connectChat({ url: open.endpoint, name: 'ana', token: TOKEN, allowInsecureAuth: true, reconnect: false }), code(ChatCodes.AUTH));
    await assert.rejects(connectChat({ url: open.endpoint, name: 'nobody', password: 'x', allowInsecureAuth: true, reconnect: false }), code(ChatCodes.AUTH));
    assert.ok((open.stats.errors[ChatCodes.AUTH] ?? 0) >= 4);
  });

  test('without TLS: the client will not send a secret, and the server refuses one unless allowInsecureAuth', async () => {
    const before = strict.stats.connections;
    await assert.rejects(connectChat({ url: strict.endpoint, name: 'ana', password: PASSWORD }), (e: Error & { code?: string }) => {
      assert.equal(e.code, ChatCodes.AUTH);
      assert.match(e.message, /without TLS/);
      return true;
    });
    assert.equal(strict.stats.connections, before, 'nothing was sent: no connection opened');
    // A client told to send it anyway: the server (allowInsecureAuth false) refuses.
    await assert.rejects(connectChat({ url: strict.endpoint, name: 'ana', password: PASSWORD, allowInsecureAuth: true, reconnect: false }), (e: Error & { code?: string }) => {
      assert.equal(e.code, ChatCodes.AUTH);
      assert.match(e.message, /allowInsecureAuth/);
      return true;
    });
    // The page asks first: /auth.json says there are accounts and that a password may not go over plain HTTP.
    assert.deepEqual(await (await fetch(new URL('/auth.json', strict.url))).json(), { accounts: true, passwords: true, tokens: true, guests: true, allowInsecureAuth: false });
  });

  test('over TLS a password and a token sign in without allowInsecureAuth, on wss, https SSE + POST and https polling', async () => {
    assert.match(secure.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(secure.endpoint, /^wss:\/\//);
    // The page's address works too (its /ws); the default trust is wirelab's local CA, which signed the server's certificate.
    const ana = await connectChat({ url: secure.url, name: 'ana', password: PASSWORD });
    const bot = await connectChat({ url: secure.endpoint, token: TOKEN, transport: 'sse' });
    const poller = await connectChat({ url: secure.endpoint, name: 'ana', password: PASSWORD, transport: 'poll' });
    assert.equal(bot.name, 'bot');
    for (const c of [ana, bot, poller]) await c.join('tls');
    const got = Promise.all([bot, poller].map((c) => c.waitFor((m) => m.type === 'event' && m.kind === 'msg' && m.text === 'over TLS')));
    await ana.send('tls', 'over TLS');
    await got;
    // The port speaks only TLS: plain http there gets no answer (so SSE and polling above were https).
    await assert.rejects(fetch(new URL('/auth.json', secure.url.replace('https:', 'http:'))));
    for (const c of [ana, bot, poller]) c.close();
  });

  test('a client that does not trust the server\'s CA is refused with WL_ERR_CHAT_TLS (the certificate error named); the server goes on', async () => {
    // Node's public roots: they did not sign wirelab's local CA.
    for (const transport of ['ws', 'sse', 'poll'] as const) {
      await assert.rejects(connectChat({ url: secure.endpoint, name: 'zed', ca: rootCertificates.join('\n'), transport, reconnect: false }), (e: Error & { code?: string; cause?: { code?: string } }) => {
        assert.equal(e.code, ChatCodes.TLS, `${transport}: ${e.message}`);
        assert.match(e.cause?.code ?? '', /CERT|UNABLE_TO/, transport);
        assert.match(e.message, /not trusted/);
        return true;
      });
    }
    await assert.rejects(connectChat({ url: secure.endpoint, name: 'zed', ca: [''] }), (e: Error & { option?: string }) => e.option === 'ca');
    // A CA with a ws:// url: the caller meant TLS; refused rather than connected in clear.
    await assert.rejects(connectChat({ url: strict.endpoint, name: 'zed', ca: rootCertificates[0]! }), (e: Error & { option?: string }) => e.option === 'ca');
    const zed = await connectChat({ url: secure.endpoint, name: 'zed' });
    zed.close();
    assert.ok(sink.find({ proto: 'tls', kind: 'error' }).length >= 3, 'the refused handshakes are traced');
  });

  test('a connection that keeps guessing is closed after maxAuthFailures (3); the server goes on serving', async () => {
    const ws = new WebSocket(open.endpoint);
    ws.on('error', () => {});
    const got: ServerMessage[] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as ServerMessage));
    const closed = new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    await new Promise((resolve) => ws.once('open', resolve));
    // One at a time: a hello sent while the last one is being checked is refused as a second hello (WL_ERR_CHAT_STATE).
    for (const password of ['a', 'b', 'c']) {
      const n = got.length;
      ws.send(JSON.stringify({ type: 'hello', name: 'ana', password }));
      while (got.length === n) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await closed, 1008);
    assert.equal(got.filter((m) => m.type === 'error' && m.code === ChatCodes.AUTH).length, 3);
    assert.ok(!got.some((m) => m.type === 'welcome'));
    const ok = await connectChat({ url: open.endpoint, name: 'ana', password: PASSWORD, allowInsecureAuth: true });
    ok.close();
  });

  test('no password or token in any trace event (TLS sessions too); the sign-ins and refusals are traced by name', () => {
    assert.ok(sink.find({ proto: 'tls', kind: 'handshake' }).length >= 3, 'TLS sessions were traced');
    const text = JSON.stringify(sink.events);
    for (const secret of [PASSWORD, TOKEN, '"wrong"']) assert.ok(!text.includes(secret), `a trace holds ${secret}`);
    assert.ok(sink.find({ kind: 'auth' }).some((e) => /ana signed in with a password/.test(e.summary)));
    assert.ok(sink.find({ kind: 'auth-refused' }).length >= 4);
  });

  test('allowGuests false: every name needs an account; bad options are refused by name', async () => {
    const closed = await startChatServer({ users: [{ name: 'bot', token: TOKEN }], allowGuests: false, allowInsecureAuth: true, heartbeatMs: 0 });
    try {
      await assert.rejects(connectChat({ url: closed.endpoint, name: 'zed', reconnect: false }), (e: Error & { code?: string }) => {
        assert.equal(e.code, ChatCodes.AUTH);
        assert.match(e.message, /allowGuests/);
        return true;
      });
      const bot = await connectChat({ url: closed.endpoint, token: TOKEN, allowInsecureAuth: true });
      assert.equal(bot.name, 'bot');
      bot.close();
    } finally {
      await closed.close();
    }
    const option = (want: string) => (e: Error & { option?: string }): boolean => {
      assert.equal(e.option, want);
      assert.ok(!e.message.includes('not-a-hash'), 'the bad value is not echoed');
      return true;
    };
    await assert.rejects(startChatServer({ users: [{ name: 'x', passwordHash: 'not-a-hash' }] }), option('users[0].passwordHash'));
    await assert.rejects(startChatServer({ users: [{ name: 'x' }] }), option('users[0]'));
    await assert.rejects(startChatServer({ users: [{ name: 'x', token: TOKEN }, { name: 'x', token: `${TOKEN}2` }] }), option('users[1].name'));
    await assert.rejects(startChatServer({ allowGuests: false }), option('allowGuests'));
    await assert.rejects(startChatServer({ tls: 'yes' as never }), option('tls'));
    await assert.rejects(startChatServer({ tls: { minVersion: '1.1' as never } }), option('tls.minVersion'));
  });
});
