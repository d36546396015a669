import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineLab, runLab } from '../../core/lab/index.ts';
import rows from '../../labs/handshakes/http.ts';
import type { HandshakeRow } from '../../labs/handshakes/types.ts';

// The HTTP area's rows of the handshakes lab, run on their own: round trips counted, every claim held.
test('handshake rows for HTTP, HTTPS and the WebSocket upgrade count 2, 3 and 2 round trips', async () => {
  let got: HandshakeRow[] = [];
  const lab = defineLab({ id: 'handshakes-http', title: 'rows', concept: 'rows of the handshakes lab', protocols: ['http', 'ws'], run: async (ctx) => void (got = await rows(ctx)) });
  const result = await runLab(lab);
  assert.equal(result.error, undefined);
  assert.ok(result.ok, JSON.stringify(result.findings.filter((f) => f.type === 'claim' && !f.holds)));
  assert.deepEqual(got.map((r) => r.roundTrips), [2, 3, 2]);
  for (const r of got) assert.ok(r.ms > 0 && r.steps.length > 0);
});
