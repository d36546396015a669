import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startUp } from '../helpers/up.ts';

test('wirelab up lists http, https, ws and wss, each with a command to try it', async () => {
  const up = await startUp(['--port-base', '0', '--only', 'http,https,ws,wss']);
  await up.stop();
  const rows = up.endpoints;
  assert.deepEqual(rows.map((r) => r.name).filter((n) => ['http', 'https', 'ws', 'wss'].includes(n)), ['http', 'https', 'ws', 'wss']);
  assert.match(rows[0]!.try, /^curl -i http:\/\/127\.0\.0\.1:\d+\/anything$/);
  assert.match(rows[1]!.try, /curl -i --http2 --cacert \S+ https:\/\/localhost:\d+/);
  assert.match(rows[2]!.try, /^python3 -c ".*Sec-WebSocket-Key/);
  assert.ok(rows.every((r) => r.url));
});
