import assert from 'node:assert/strict';
import { exec } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { NOOP_TRACER } from '../../core/trace/index.ts';
import { SERVICES } from '../../servers/index.ts';
import { requirePeer } from '../helpers/peers.ts';

// `wirelab up` entries: the FTP root lives under the data dir, so this file points the data dir at a temporary folder.
const dataDir = mkdtempSync(join(tmpdir(), 'wirelab-ftp-up-'));
process.env.WIRELAB_DATA_DIR = dataDir;
const sh = promisify(exec);

for (const [name, wellKnown] of [['ftp', 21], ['ftps', 990]] as const) {
  test(`wirelab up entry ${name}: IANA port ${wellKnown}, a root field under the data dir, and its curl command works`, async (t) => {
    if (!requirePeer(t, 'curl', 'curl')) return;
    const entry = SERVICES.find((s) => s.name === name);
    assert.ok(entry);
    assert.equal(entry.wellKnownPort, wellKnown);
    const server = await entry.start({ host: '127.0.0.1', port: 0, tracer: NOOP_TRACER });
    t.after(() => server.close());
    assert.deepEqual(entry.extra?.(server), { root: join(dataDir, 'ftp', 'demo') });
    const command = entry.tryWith(server);
    assert.match(command, /^curl /);
    const r = await sh(command, { timeout: 20_000 });
    assert.match(r.stdout, /readme\.txt/);
  });
}

test.after(() => rmSync(dataDir, { recursive: true, force: true }));
