import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectPeerPair } from '../../clients/webrtc-pair.ts';
import { startCoturn } from '../../servers/webrtc/coturn.ts';
import { startSignalingServer } from '../../servers/webrtc/index.ts';
import { requirePeer } from '../helpers/peers.ts';

test('relay only through Debian coturn on 127.0.0.1: relay candidates, a relay pair, data both ways', async (t) => {
  if (!requirePeer(t, 'turnserver', 'coturn')) return;
  const turn = await startCoturn();
  const server = await startSignalingServer();
  try {
    const iceServers = [{ urls: turn.url, username: turn.username, credential: turn.password }];
    const pair = await connectPeerPair(server.signalUrl, 'turn', (a) => a.createChannel('chat'), { iceServers, iceTransportPolicy: 'relay' });
    try {
      const [ca, cb] = await Promise.all([pair.a.channel('chat'), pair.b.channel('chat')]);
      ca.send('through the relay');
      assert.equal((await cb.next()).data, 'through the relay');
      cb.send(Buffer.from([4, 2]));
      assert.deepEqual([...((await ca.next()).data as Buffer)], [4, 2]);
      for (const p of [pair.a, pair.b]) {
        assert.ok(p.localCandidates.some((c) => / typ relay /.test(c)), p.localCandidates.join('\n'));
        const sel = p.selectedPair();
        assert.match(sel?.local ?? '', / typ relay /);
        assert.match(sel?.remote ?? '', / typ relay /);
      }
    } finally {
      await pair.close();
    }
  } finally {
    await server.close();
    await turn.close();
  }
});
