/**
 * The fuzz suite: `wirelab up --port-base 0` as a real process, and on every port it lists, batch after batch of
 * random and mutated-valid input (cases.ts). After each batch the process must be alive, every service must answer a
 * valid client (deliver.ts probes), and its RSS must stay under the bound. A server added to the registry joins with
 * no code here: its proto picks its cases and its probe.
 *
 * WIRELAB_FUZZ_MS: time spent fuzzing (default 40,000 ms; the test takes about 15 s more to start and stop).
 * WIRELAB_FUZZ_SEED: replays a run (every failure message prints the seed and the batch).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Prng, randomSeed } from '../../core/impair/prng.ts';
import { startUp } from '../helpers/up.ts';
import { CaseGenerator, datagram, type Endpoint } from './cases.ts';
import { deliver, probe, sendDatagrams } from './deliver.ts';

const BUDGET_MS = Number(process.env.WIRELAB_FUZZ_MS ?? 40_000);
const SEED = process.env.WIRELAB_FUZZ_SEED ? Number(process.env.WIRELAB_FUZZ_SEED) >>> 0 : randomSeed();
/** Connections in flight at once: enough to overlap cases on one server, few enough for a loaded 2-core machine. */
const CONCURRENCY = 24;
const CASES_PER_PORT = 6;
const DATAGRAMS_PER_BATCH = 40;
/**
 * RSS bound: twice the RSS after start-up plus 200 MB. Legitimate peaks are a few 1 MiB messages buffered at once
 * (maxPayload, overlong lines) times the concurrency, plus heap the GC has not yet returned; a per-connection leak
 * over hundreds of batches grows past it.
 */
const rssBound = (start: number): number => 2 * start + 200 * 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function pool(jobs: Array<() => Promise<void>>, width: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, jobs.length) }, async () => {
      while (next < jobs.length) await jobs[next++]!();
    }),
  );
}

/** Every service, probed at once; a failed probe is tried once more (a loaded machine may be slow, not broken). */
async function probeAll(endpoints: Endpoint[]): Promise<string[]> {
  const results = await Promise.all(
    endpoints.map(async (e) => {
      const first = await probe(e);
      if (first === null) return null;
      await new Promise((r) => setTimeout(r, 1000));
      const second = await probe(e);
      return second === null ? null : `${e.name} (${e.proto} :${e.port}): ${second}`;
    }),
  );
  return results.filter((r): r is string => r !== null);
}

test(`fuzz every port of wirelab up (${BUDGET_MS} ms, seed ${SEED}): it stays up, every service answers, RSS bounded`, { timeout: BUDGET_MS + 120_000 }, async (t) => {
  const up = await startUp(['--port-base', '0'], 60_000);
  const pid = up.child.pid!;
  const replay = `(replay: WIRELAB_FUZZ_SEED=${SEED})`;
  try {
    const endpoints = up.endpoints as Endpoint[];
    assert.ok(endpoints.length > 0);
    assert.deepEqual(await probeAll(endpoints), [], 'every service answers before the fuzzing starts');
    const rss0 = rssOf(pid);
    const limit = rssBound(rss0);
    const g = new CaseGenerator(new Prng(SEED));
    const families: Record<string, number> = {};
    let batches = 0;
    let cases = 0;
    let maxRss = rss0;
    const deadline = performance.now() + BUDGET_MS;
    while (performance.now() < deadline) {
      batches++;
      // All of a batch's cases are drawn before any is sent, so the same seed gives the same batches whatever the timing.
      const jobs: Array<() => Promise<void>> = [];
      const sent: Record<string, string[]> = {};
      for (const e of endpoints) {
        if (e.proto === 'udp') {
          const ds = Array.from({ length: DATAGRAMS_PER_BATCH }, () => datagram(g));
          jobs.push(() => sendDatagrams(e, ds));
          families['udp-datagram'] = (families['udp-datagram'] ?? 0) + ds.length;
          continue;
        }
        for (let i = 0; i < CASES_PER_PORT; i++) {
          const c = g.next(e);
          (sent[e.name] ??= []).push(c.family);
          families[c.family] = (families[c.family] ?? 0) + 1;
          jobs.push(() => deliver(e, c));
        }
      }
      // Interleave the services so each batch hits all of them at once.
      for (let i = jobs.length - 1; i > 0; i--) {
        const j = g.rng.int(0, i);
        [jobs[i], jobs[j]] = [jobs[j]!, jobs[i]!];
      }
      await pool(jobs, CONCURRENCY);
      cases += jobs.length;
      const where = `batch ${batches} ${replay}; this batch sent ${JSON.stringify(sent)}`;
      assert.equal(up.child.exitCode, null, `wirelab up exited after ${where}\n${up.stderr().slice(-3000)}`);
      assert.equal(up.child.signalCode, null, `wirelab up was killed after ${where}`);
      const failures = await probeAll(endpoints);
      assert.deepEqual(failures, [], `services stopped answering after ${where}`);
      const rss = rssOf(pid);
      maxRss = Math.max(maxRss, rss);
      assert.ok(rss < limit, `RSS ${Math.round(rss / 1e6)} MB over the bound ${Math.round(limit / 1e6)} MB after ${where}`);
    }
    t.diagnostic(
      `seed ${SEED}: ${batches} batches, ${cases} connections / datagram bursts on ${endpoints.length} ports; ` +
        `RSS ${Math.round(rss0 / 1e6)} MB at start, ${Math.round(maxRss / 1e6)} MB at most (bound ${Math.round(limit / 1e6)} MB)`,
    );
    t.diagnostic(`cases by family: ${JSON.stringify(families)}`);
    // Warnings (a listener leak, a deprecation) are worth seeing, though not a failure.
    if (up.stderr().trim()) t.diagnostic(`wirelab up wrote to stderr: ${up.stderr().trim().slice(-1500)}`);
  } finally {
    await up.stop();
  }
});
