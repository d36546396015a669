import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

// The lab itself runs in labs.test.ts (every lab, every claim). Here: what it does where Chromium is missing, without
// starting a browser.
test('webrtc-media without chromium: skipped naming the package, a failure under CI=true', async () => {
  const env = { ...process.env, WIRELAB_CHROMIUM: '/nonexistent/chromium', CI: '' };
  const skipped = await runCli(['lab', 'webrtc-media', '--json'], { env, timeoutMs: 120_000 });
  assert.equal(skipped.code, 0, skipped.stderr);
  const result = JSON.parse(skipped.stdout) as { skipped?: string };
  assert.match(result.skipped ?? '', /chromium \(Debian package chromium/);
  const ci = await runCli(['lab', 'webrtc-media', '--json'], { env: { ...env, CI: 'true' }, timeoutMs: 120_000 });
  assert.equal(ci.code, 1);
  assert.match(ci.stdout + ci.stderr, /CI=true and the lab would skip/);
});
