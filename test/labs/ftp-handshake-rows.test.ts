import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineLab, runLab } from '../../core/lab/index.ts';
import ftpRows from '../../labs/handshakes/ftp.ts';

// The handshakes lab gathers every area's rows; this runs the FTP rows on their own, through the real lab runner.
test('the FTP handshake rows count round trips from what was observed, and every claim holds', async () => {
  let rows: Awaited<ReturnType<typeof ftpRows>> = [];
  const lab = defineLab({ id: 'ftp-rows', title: 'FTP rows', concept: 'rows', protocols: ['ftp'], run: async (ctx) => void (rows = await ftpRows(ctx)) });
  const result = await runLab(lab);
  assert.equal(result.error, undefined);
  assert.ok(result.ok, JSON.stringify(result.findings));
  assert.deepEqual(rows.map((r) => r.handshake), ['FTP login (USER / PASS)', 'FTP passive listing (EPSV + data connection)', 'FTPS login (AUTH TLS, explicit)']);
  assert.equal(rows[0]!.roundTrips, 3);
  assert.ok(rows[2]!.roundTrips > rows[0]!.roundTrips, 'AUTH TLS and the TLS handshake add round trips');
});
