import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KernelLink, kernelSupport } from '../../core/impair/kernel/index.ts';
import { KernelTcpPair } from '../../labs/measure/index.ts';
import { requirePeer } from '../helpers/peers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const namespaces = (): string => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;

/** Kernel mode needs root and the two programs; without root it is skipped (it falls back in labs, by design). */
function needKernel(t: TestContext): boolean {
  if (!requirePeer(t, 'ip', 'iproute2') || !requirePeer(t, 'nft', 'nftables')) return false;
  const s = kernelSupport();
  if (!s.available) {
    // CI runs as root on a machine that has network namespaces: there, unavailable is a failure, not a skip.
    if (process.env.CI === 'true') throw new Error(`CI=true and kernel mode unavailable: ${s.reason}`);
    t.skip(`kernel mode unavailable: ${s.reason}`);
    return false;
  }
  return true;
}

test('kernel mode: two links get distinct names; random drop loses packets and TCP really retransmits; close deletes everything', async (t) => {
  if (!needKernel(t)) return;
  const a = KernelLink.create();
  const b = KernelLink.create();
  try {
    assert.notEqual(a.nsA, b.nsA);
    assert.match(namespaces(), new RegExp(a.nsA));
    const pair = await KernelTcpPair.start(a);
    a.setLoss('b', 0.1);
    const r = await pair.run({ n: 300, ratePerSec: 3000, size: 32 });
    assert.equal(r.delivered, 300);
    assert.ok(r.dropped > 0, `nft dropped ${r.dropped}`);
    assert.ok(r.retransmitted > 0, `kernel counted ${r.retransmitted} retransmissions`);
    // tbf: 200 KB at 4 Mbit/s (burst 4 KB) cannot take less than about 400 ms.
    a.setLoss('b', 0);
    a.setRate('a', 4000);
    const shaped = await pair.run({ n: 200, ratePerSec: 1_000_000, size: 1000 });
    assert.equal(shaped.delivered, 200);
    assert.ok(shaped.durationMs >= 350, `took ${shaped.durationMs} ms`);
    a.setRate('a', 0);
    // nft dup: real duplicate segments, discarded by the receiving TCP (which says so with D-SACKs).
    a.setDuplicate('b', 0.2);
    const dup = await pair.run({ n: 200, ratePerSec: 2000, size: 32 });
    assert.equal(dup.delivered, 200);
    assert.equal(dup.duplicates, 0);
    assert.ok(dup.duplicateSegments > 0, `D-SACKed ${dup.duplicateSegments}`);
  } finally {
    await a.close();
    await b.close();
  }
  assert.doesNotMatch(namespaces(), new RegExp(`${a.nsA}|${b.nsA}`));
});

test('kernel mode: Ctrl-C (SIGINT) in the middle of a run tears the namespaces down', async (t) => {
  if (!needKernel(t)) return;
  const script = `import { KernelLink } from './core/impair/kernel/index.ts';
const l = KernelLink.create(); console.log(l.nsA); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const ns = await new Promise<string>((r) => child.stdout.once('data', (d: Buffer) => r(d.toString().trim())));
  assert.match(namespaces(), new RegExp(ns));
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, sig) => r(sig)));
  child.kill('SIGINT');
  assert.equal(await exited, 'SIGINT');
  assert.doesNotMatch(namespaces(), new RegExp(ns));
});

test('kernel mode off: kernelSupport says why, and KernelLink.create throws WL_ERR_KERNEL_UNAVAILABLE', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { KernelLink, kernelSupport } from './core/impair/kernel/index.ts';
try { KernelLink.create(); } catch (e) { console.log(JSON.stringify({ code: e.code, support: kernelSupport() })); }`], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, WIRELAB_KERNEL: 'off' } });
  const out = JSON.parse(r.stdout) as { code: string; support: { available: boolean; reason: string } };
  assert.equal(out.code, 'WL_ERR_KERNEL_UNAVAILABLE');
  assert.equal(out.support.available, false);
  assert.match(out.support.reason, /WIRELAB_KERNEL=off/);
});
