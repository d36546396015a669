import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectTcp } from '../../clients/tcp.ts';
import { defineLab, runLab } from '../../core/lab/index.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import { startFlightTap } from '../../labs/_flights.ts';

// The flight tap counts TLS round trips from the records that cross it: two for a full TLS 1.2 handshake, one for TLS
// 1.3, none for plaintext. A count assumed from the version could not tell these apart from a wrong wire.
test('the flight tap counts TLS handshake flights on the wire', async () => {
  const counted: Record<string, number> = {};
  const lab = defineLab({
    id: 'flight-tap',
    title: 'flight tap',
    concept: 'flights',
    protocols: ['tls'],
    async run(ctx) {
      const tlsEcho = await ctx.start(startTcpServer({ tls: { minVersion: '1.2', maxVersion: '1.3' } }));
      const plainEcho = await ctx.start(startTcpServer({}));
      const tap = await startFlightTap(ctx, tlsEcho.port);
      for (const version of ['1.2', '1.3'] as const) {
        const mark = tap.mark();
        const c = await connectTcp({ port: tap.port, tls: { minVersion: version, maxVersion: version } });
        counted[version] = tap.tlsServerFlightsSince(mark);
        await c.send('ping');
        await c.readBytes(4);
        await c.destroy();
      }
      const plainTap = await startFlightTap(ctx, plainEcho.port);
      const mark = plainTap.mark();
      const c = await connectTcp({ port: plainTap.port });
      await c.send('ping');
      await c.readBytes(4);
      counted.plain = plainTap.tlsServerFlightsSince(mark);
      await c.destroy();
      ctx.claim('ran', true);
    },
  });
  const r = await runLab(lab);
  assert.equal(r.error, undefined);
  assert.deepEqual(counted, { '1.2': 2, '1.3': 1, plain: 0 });
});
