import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadUpConfig } from '../../bin/commands/up-config.ts';
import { runCli } from '../helpers/cli.ts';
import { startUp } from '../helpers/up.ts';

/** Connects, reads the greeting, sends each line and returns every reply line (or 'closed'). */
async function dialog(port: number, lines: string[]): Promise<string[]> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  const replies: string[] = [];
  let buf = '';
  let wake: (() => void) | null = null;
  let closed = false;
  s.on('data', (d) => {
    buf += d.toString();
    wake?.();
  });
  s.on('close', () => {
    closed = true;
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (!buf.includes('\r\n') && !closed) await new Promise<void>((r) => (wake = r));
    const i = buf.indexOf('\r\n');
    if (i === -1) return 'closed';
    const l = buf.slice(0, i);
    buf = buf.slice(i + 2);
    return l;
  };
  await next();
  for (const l of lines) {
    s.write(`${l}\r\n`);
    replies.push(await next());
  }
  s.destroy();
  return replies;
}

test('--config and --set: names checked before anything starts, values merged, the file read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-upcfg-'));
  try {
    const file = join(dir, 'wirelab.json');
    await writeFile(file, JSON.stringify({ servers: { ftp: { pasvPortMin: 30000, pasvPortMax: 30009 }, pop3: { chaos: { rules: [{ command: 'STAT' }] } } } }));
    const c = await loadUpConfig(file, ['ftp.requireTls=true', 'ftp.pasvPortMax=30019', 'imap.maxConnections=5']);
    assert.deepEqual(c, { ftp: { pasvPortMin: 30000, pasvPortMax: 30019, requireTls: true }, pop3: { chaos: { rules: [{ command: 'STAT' }] } }, imap: { maxConnections: 5 } });
    await assert.rejects(loadUpConfig(undefined, ['ftp.pasvPortMn=1']), /ftp has no option "pasvPortMn"; its options: .*pasvPortMin/);
    await assert.rejects(loadUpConfig(undefined, ['tcp-echo.maxConnections=1']), /service "tcp-echo" takes no options here/);
    await assert.rejects(loadUpConfig(undefined, ['ftp']), /SERVICE\.OPTION=VALUE/);
    await writeFile(file, '{ "servers": ');
    await assert.rejects(loadUpConfig(file), (e: Error & { code?: string }) => e.code === 'WL_ERR_USAGE' && /--config .*wirelab\.json/.test(e.message));
    const bad = await runCli(['up', '--port-base', '0', '--set', 'pop3.maxConections=3']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /pop3 has no option "maxConections"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('wirelab up --set: a server starts with the options given, and the control API changes its chaos while it runs', async () => {
  const up = await startUp(['--port-base', '0', '--only', 'pop3,ftp', '--set', 'pop3.allowInsecureAuth=true', '--set', 'pop3.chaos={"rules":[{"command":"NOOP","times":1}]}', '--set', 'ftp.requireTls=true']);
  try {
    const pop3 = up.endpoints.find((e) => e.name === 'pop3')!;
    const ftp = up.endpoints.find((e) => e.name === 'ftp')!;
    const control = up.endpoints.find((e) => e.name === 'impair-control')!;
    // allowInsecureAuth reached the server (USER is refused before STLS otherwise); the chaos rule fires once.
    const [user, pass, first, second] = await dialog(pop3.port, ['USER demo', 'PASS demo', 'NOOP', 'NOOP']);
    assert.match(`${user} | ${pass}`, /^\+OK .* \| \+OK /);
    assert.deepEqual([first, second], ['-ERR [SYS/TEMP] chaos: injected failure', '+OK']);
    // requireTls: a login in clear is refused with 534.
    assert.match((await dialog(ftp.port, ['USER demo']))[0]!, /^534 /);
    const servers = (await (await fetch(`${control.url}/servers`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(servers).sort(), ['ftp', 'pop3']);
    const set = await fetch(`${control.url}/servers/ftp/chaos`, { method: 'POST', body: JSON.stringify({ rules: [{ command: 'SYST', code: 502 }] }) });
    assert.equal(set.status, 200);
    assert.match((await dialog(ftp.port, ['SYST']))[0]!, /^502 chaos: injected failure/);
    const refused = await fetch(`${control.url}/servers/ftp/chaos`, { method: 'POST', body: JSON.stringify({ rules: [{ command: 'SYST', code: 'NO' }] }) });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: string }).error, /400 to 599/);
    assert.equal((await fetch(`${control.url}/servers/nope/chaos`)).status, 404);
    assert.equal((await up.stop()).code, 0);
  } finally {
    up.child.kill('SIGKILL');
  }
});
