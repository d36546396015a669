import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectChat, type ChatClient } from '../../../apps/chat/client.ts';
import { DmAgent } from '../../../apps/chat/dm-peer.ts';
import { ChatCodes, type ClientMessage, type ServerMessage } from '../../../apps/chat/protocol.ts';
import { startChatServer, type RunningChatServer } from '../../../apps/chat/server/index.ts';
import { CLI } from '../../helpers/cli.ts';
import { run } from '../../helpers/run.ts';

const isError = (cid: string) => (m: ServerMessage): m is Extract<ServerMessage, { type: 'error' }> => m.type === 'error' && m.cid === cid;

describe('chat DMs (relay, signaling limits) and the Node client switching transports', () => {
  let server: RunningChatServer;
  const clients: ChatClient[] = [];
  const join = async (name: string, room: string): Promise<ChatClient> => {
    const c = await connectChat({ url: server.endpoint, name, reconnectMinMs: 20 });
    clients.push(c);
    await c.join(room);
    return c;
  };
  before(async () => {
    server = await startChatServer({ heartbeatMs: 0, ratePerSecond: 1000, rateBurst: 1000, maxFramesPerSecond: 1000, pollWaitMs: 2000, pollIdleMs: 5000 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('/transport ws -> sse -> poll -> ws mid-conversation: every message once, in order, no gap', async () => {
    const ana = await join('ana', 'switch');
    const ben = await join('ben', 'switch');
    const sends: Promise<number>[] = [];
    const seen: string[] = [];
    for (const [i, t] of (['sse', 'poll', 'ws', null] as const).entries()) {
      for (let j = 0; j < 10; j++) sends.push(ben.send('switch', `m${i * 10 + j}`));
      // ana also talks during the switch: her message is resent on the new connection and stored once.
      sends.push(ana.send('switch', `ana ${i}`));
      if (t) {
        await ana.setTransport(t);
        assert.equal(ana.transport, t);
        seen.push(t);
      }
    }
    await Promise.all(sends);
    const want = [...Array(40).keys()].map((i) => `m${i}`);
    const has = (c: ChatClient): string[] => (c.rooms.get('switch')?.events ?? []).filter((e) => e.kind === 'msg').map((e) => e.text ?? '');
    const deadline = Date.now() + 10_000;
    while (want.some((w) => !has(ana).includes(w)) || has(ana).filter((x) => x.startsWith('ana')).length < 4) {
      assert.ok(Date.now() < deadline, `ana holds ${has(ana).length} messages`);
      await ana.waitFor((m) => m.type === 'event', 2000).catch(() => undefined);
    }
    const got = has(ana);
    assert.deepEqual(got.filter((x) => x.startsWith('m')), want, 'ben\'s messages in order, each once');
    assert.deepEqual(got.filter((x) => x.startsWith('ana')), ['ana 0', 'ana 1', 'ana 2', 'ana 3']);
    const offsets = ana.rooms.get('switch')!.events.map((e) => e.offset);
    assert.ok(offsets.every((o, i) => i === 0 || o === offsets[i - 1]! + 1), 'no gap in the offsets');
    assert.equal(ana.duplicates, 0);
    assert.deepEqual(seen, ['sse', 'poll', 'ws']);
  });

  test('a DM between two Node clients goes through the relay, is acknowledged, and is stored nowhere', async () => {
    const cat = await join('cat', 'dmroom');
    const dan = await join('dan', 'dmroom');
    const stored = server.stats.messages;
    const got = dan.waitFor((m) => m.type === 'dm');
    const ms = await cat.dm('dan', 'hello dan');
    assert.ok(ms >= 0);
    const m = await got;
    assert.equal(m.type === 'dm' && `${m.from}: ${m.text}`, 'cat: hello dan');
    assert.equal(server.stats.dm.relayed, 1);
    assert.equal(server.stats.messages, stored, 'nothing stored');
    // An offer to a Node client is declined with bye (it has no WebRTC): the page falls back at once.
    const bye = cat.waitFor((x) => x.type === 'signal' && x.kind === 'bye');
    cat.raw({ type: 'signal', to: 'dan', session: 'offer1', kind: 'offer', sdp: 'v=0\r\n' });
    assert.equal((await bye).type, 'signal');
  });

  test('bad DM input: clear codes, named limits, and the server keeps serving', async () => {
    const eve = await join('eve', 'bad');
    const fay = await join('fay', 'bad');
    await join('gus', 'elsewhere');
    const ask = async (m: ClientMessage, cid: string) => {
      const answer = eve.waitFor(isError(cid));
      eve.raw(m);
      return answer;
    };
    const unknown = await ask({ type: 'dm', to: 'nobody', id: 'd1', text: 'hi' }, 'd1');
    assert.equal(unknown.code, ChatCodes.PEER);
    const notShared = await ask({ type: 'dm', to: 'gus', id: 'd2', text: 'hi' }, 'd2');
    assert.equal(notShared.code, ChatCodes.PEER, 'a user in no room eve is in');
    const big = await ask({ type: 'signal', to: 'fay', session: 'big', kind: 'offer', sdp: 'a'.repeat(20_000) }, 'big');
    assert.deepEqual([big.code, big.limit], [ChatCodes.LIMIT, 'maxSdpBytes']);
    const bigCand = await ask({ type: 'signal', to: 'fay', session: 'c1', kind: 'candidate', candidate: { candidate: 'x'.repeat(2000), sdpMid: '0' } }, 'c1');
    assert.deepEqual([bigCand.code, bigCand.limit], [ChatCodes.LIMIT, 'maxCandidateBytes']);
    const stray = await ask({ type: 'signal', to: 'fay', session: 'none', kind: 'answer', sdp: 'v=0' }, 'none');
    assert.equal(stray.code, ChatCodes.STATE);
    const invalid = eve.waitFor((m) => m.type === 'error' && m.code === ChatCodes.INVALID);
    eve.raw({ type: 'signal', to: 'fay', session: 'x', kind: 'wave' } as unknown as ClientMessage);
    assert.match((await invalid).type === 'error' ? ((await invalid) as { message: string }).message : '', /kind/);
    // A flood of offers: maxDmSessionsPerUser (8) wait for an answer, the rest are refused.
    const offers: ServerMessage[] = [];
    const off = fay.on((m) => {
      if (m.type === 'signal' && m.kind === 'offer') offers.push(m);
    });
    const refusals: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      if (i >= 8) refusals.push(eve.waitFor(isError(`flood${i}`)));
      eve.raw({ type: 'signal', to: 'fay', session: `flood${i}`, kind: 'offer', sdp: 'v=0\r\n' });
    }
    const refused = (await Promise.all(refusals)) as Array<{ limit?: string }>;
    assert.deepEqual(refused.map((r) => r.limit), Array(4).fill('maxDmSessionsPerUser'));
    off();
    assert.ok(offers.length <= 8);
    assert.equal(server.stats.dm.pendingSessions >= 8, true);
    // The server keeps serving: fay and eve still chat, and a DM still goes through.
    await fay.send('bad', 'still here');
    assert.ok((await eve.dm('fay', 'and DMs too')) >= 0);
  });

  test('wirelab chat: /transport, and /dm peer to peer (werift) to one client and relayed to one without WebRTC', async () => {
    // hal has WebRTC (a DmAgent, as the terminal command has); jon declines offers, so his DM falls back to the relay.
    const hal = await connectChat({ url: server.endpoint, name: 'hal', declineDmOffers: false });
    clients.push(hal);
    await hal.join('cli');
    const halGot: string[] = [];
    const agent = new DmAgent(hal, { iceTimeoutMs: 20_000, onDm: (from, text) => halGot.push(`${from}: ${text}`) });
    const jon = await join('jon', 'cli');
    const jonGot = jon.waitFor((m) => m.type === 'dm', 20_000);
    const relayed0 = server.stats.dm.relayed;
    const r = await run(process.execPath, [CLI, 'chat', '--url', server.endpoint, '--name', 'ivy', '--room', 'cli'], {
      input: 'before\n/transport sse\n/dm hal psst\n/dm jon hey\n/transport poll\nafter\n/help\n',
      timeoutMs: 30_000,
    });
    await agent.close();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /now on sse/);
    assert.match(r.stdout, /now on poll/);
    assert.match(r.stdout, /\(dm\) to hal: psst {2}\(webrtc \(p2p\), [\d.]+ ms round trip\)/, r.stdout);
    assert.match(r.stdout, /\(dm\) to jon: hey {2}\(relay, [\d.]+ ms round trip; peer to peer: jon declined the DM channel \(bye\)\)/, r.stdout);
    assert.match(r.stdout, /\/transport ws\|sse\|poll/);
    assert.deepEqual(halGot, ['ivy: psst']);
    assert.equal((await jonGot).type, 'dm');
    assert.equal(server.stats.dm.relayed - relayed0, 1, 'only the DM to jon went through the server');
    const texts = (hal.rooms.get('cli')?.events ?? []).map((e) => e.text);
    const deadline = Date.now() + 5000;
    while (!(hal.rooms.get('cli')?.events ?? []).some((e) => e.text === 'after') && Date.now() < deadline) await hal.waitFor((m) => m.type === 'event', 1000).catch(() => undefined);
    assert.deepEqual((hal.rooms.get('cli')?.events ?? []).filter((e) => e.kind === 'msg').map((e) => e.text), ['before', 'after'], String(texts));
  });
});
