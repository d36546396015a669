import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../../pubsub/broker/auth.ts';
import { CLI } from '../../helpers/cli.ts';
import { run } from '../../helpers/run.ts';
import { startUp, type Endpoint, type UpProcess } from '../../helpers/up.ts';

describe('wirelab up: the chat row, and wirelab chat with piped stdin', () => {
  let up: UpProcess;
  let row: Endpoint;
  const dir = mkdtempSync(join(tmpdir(), 'wl-chat-cli-'));
  before(async () => {
    // One account, given the documented way (`--set chat.users=JSON`); every other name stays a guest.
    const users = JSON.stringify([{ name: 'ops', passwordHash: await hashPassword('s3cret pass', { N: 1024 }) }]);
    up = await startUp(['--port-base', '0', '--only', 'chat', '--set', `chat.users=${users}`, '--set', 'chat.allowInsecureAuth=true'], 60_000);
    row = up.endpoints.find((e) => e.name === 'chat')!;
  });
  after(async () => {
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the row prints the page URL, and the page answers', async () => {
    assert.ok(row, 'a chat row');
    assert.equal(row.url, `http://${row.host}:${row.port}/`);
    const page = await fetch(row.url!);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /wirelab chat/);
  });

  test("the row's command works: lines piped in are stored; a second user sees them in the history", async () => {
    const cmd = row.try.split(' ');
    assert.deepEqual(cmd.slice(0, 2), ['npx', 'wirelab']);
    const args = cmd.slice(2);
    const first = await run(process.execPath, [CLI, ...args], { input: 'hello from a pipe\n/who\nsecond line\n', timeoutMs: 30_000 });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /ana in #lobby/);
    assert.match(first.stdout, /online: ana/);
    const second = await run(process.execPath, [CLI, ...args.map((a) => (a === 'ana' ? 'ben' : a))], { input: '', timeoutMs: 30_000 });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /ana: hello from a pipe/);
    assert.match(second.stdout, /ana: second line/);
  });

  test('a bad name is a usage error; an unreachable server or an untrusted certificate exits 1', async () => {
    const bad = await run(process.execPath, [CLI, 'chat', '--name', 'a\u0007b', '--url', row.try.split('--url ')[1]!], { timeoutMs: 20_000 });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /control/);
    const none = await run(process.execPath, [CLI, 'chat', '--name', 'x', '--url', 'ws://127.0.0.1:1/ws', '--timeout-ms', '2000'], { timeoutMs: 20_000 });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /cannot chat/);
    // A --ca that did not sign the chat-tls row's certificate (Node's public roots): exit 1 with the code and the reason.
    const roots = join(dir, 'roots.pem');
    writeFileSync(roots, rootCertificates.join('\n'));
    const tlsRow = up.endpoints.find((e) => e.name === 'chat-tls')!;
    const untrusted = await run(process.execPath, [CLI, 'chat', '--name', 'x', '--url', tlsRow.url!, '--ca', roots], { input: 'never sent\n', timeoutMs: 20_000 });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /WL_ERR_CHAT_TLS: the certificate of .* is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)/);
  });

  test('the chat-tls row: a registered name signs in with --password-file over https with --ca, no --allow-insecure-auth; same chat as the chat row', async () => {
    // One spawn only (each costs seconds on a loaded machine): refusals are test/apps/chat/auth.test.ts's.
    const tlsRow = up.endpoints.find((e) => e.name === 'chat-tls')!;
    assert.ok(tlsRow, 'a chat-tls row (--only chat starts both: same proto, as http and https)');
    assert.equal(tlsRow.url, `https://${tlsRow.host}:${tlsRow.port}/`);
    const cmd = tlsRow.try.split(' ');
    assert.ok(cmd.includes('--ca'), tlsRow.try);
    const file = join(dir, 'password');
    writeFileSync(file, 's3cret pass\n');
    const args = cmd.slice(2).map((a) => (a === 'ana' ? 'ops' : a));
    const ok = await run(process.execPath, [CLI, ...args, '--password-file', file], { input: 'signed in\n', timeoutMs: 30_000 });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /ops in #lobby/);
    // The history the plain row's users wrote: one chat behind both doors.
    assert.match(ok.stdout, /ana: hello from a pipe/);
    assert.ok(!ok.stdout.includes('s3cret'), 'the password is not printed');
  });
});
