import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startTcpRelay } from '../../core/relay.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';

const DELAY = 15;

test('the relay never releases a chunk before its delay has passed, keeps order, and passes the end on', async () => {
  const echo = await startTcpServer({ mode: 'echo' });
  const holds: Array<{ dir: string; heldMs: number }> = [];
  const relay = await startTcpRelay({ target: { port: echo.port }, delayMs: DELAY, onForward: (dir, _c, _n, heldMs) => holds.push({ dir, heldMs }) });
  const socket = net.connect(relay.port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  let got = '';
  const rtts: number[] = [];
  try {
    // Writes at awkward moments (a timer rounds to whole milliseconds): every one must still wait DELAY each way.
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const want = got.length + 2;
      socket.write(String(i % 10) + '.');
      await new Promise<void>((resolve) => {
        const on = (d: Buffer): void => {
          got += d.toString();
          if (got.length >= want) {
            socket.off('data', on);
            resolve();
          }
        };
        socket.on('data', on);
      });
      rtts.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, (i % 3) * 0.7));
    }
    assert.equal(got, Array.from({ length: 20 }, (_, i) => `${i % 10}.`).join(''));
    assert.ok(holds.length >= 40, `${holds.length} chunks forwarded`);
    for (const h of holds) assert.ok(h.heldMs >= DELAY, `a chunk was held ${h.heldMs} ms < ${DELAY}`);
    for (const rtt of rtts) assert.ok(rtt >= 2 * DELAY, `a round trip took ${rtt} ms < ${2 * DELAY}`);
    // The client's FIN reaches the echo server after the delay, and its FIN comes back.
    const ended = new Promise((r) => socket.once('end', r));
    socket.end();
    await ended;
  } finally {
    socket.destroy();
    await relay.close();
    await echo.close();
  }
});

test('bad options throw a TypeError naming them', async () => {
  await assert.rejects(startTcpRelay({ target: { port: 70_000 } }), (e: Error & { option?: string }) => e instanceof TypeError && e.option === 'target.port');
  await assert.rejects(startTcpRelay({ target: { port: 1 }, delayMs: -1 }), (e: Error & { option?: string }) => e instanceof TypeError && e.option === 'delayMs');
});
