import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { CLI } from '../helpers/cli.ts';

test('wirelab up lists http, https, ws and wss, each with a command to try it', async () => {
  const child = spawn(process.execPath, [CLI, 'up', '--port-base', '0', '--only', 'http,https,ws,wss', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.on('exit', (code) => reject(new Error(`up exited ${code}`)));
  });
  const closed = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await closed;
  const rows = JSON.parse(line) as Array<{ name: string; url: string; try: string }>;
  assert.deepEqual(rows.map((r) => r.name).filter((n) => ['http', 'https', 'ws', 'wss'].includes(n)), ['http', 'https', 'ws', 'wss']);
  assert.match(rows[0]!.try, /^curl -i http:\/\/127\.0\.0\.1:\d+\/anything$/);
  assert.match(rows[1]!.try, /curl -i --http2 --cacert \S+ https:\/\/localhost:\d+/);
  assert.match(rows[2]!.try, /^python3 -c ".*Sec-WebSocket-Key/);
  assert.ok(rows.every((r) => r.url));
});
