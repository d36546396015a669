/**
 * What one idle `wirelab up` costs (issue 18): every server of the table running, nothing connected. Memory is the
 * resident set of the process tree (`up` starts no child process today; any it starts later is summed in), CPU is the
 * user + system time the tree used over a quiet window, read from /proc. The baseline is a bare `node` process that
 * only waits, measured in the same run, so the ratio says what the servers add to Node itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineBench, type BenchRow } from './harness.ts';
import { sleep } from '../core/time.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Time left for start-up work (JIT, first timers) before the quiet window opens. */
const SETTLE_MS = 3000;
/** The quiet window CPU time is counted over. */
const WINDOW_MS = 10_000;
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** The PIDs of `pid` and all its descendants, from /proc/<pid>/task/<tid>/children. */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** CPU seconds (user + system) and resident bytes of a process tree. */
function usage(pid: number): { cpuS: number; rssBytes: number } {
  let ticks = 0;
  let rss = 0;
  for (const p of tree(pid)) {
    try {
      // Fields after the command name (which may hold spaces) start at ")": utime is field 14, stime 15 of stat.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) rss += Number(m[1]) * 1024;
    } catch { /* gone meanwhile */ }
  }
  return { cpuS: ticks / TICKS_PER_SECOND, rssBytes: rss };
}

/** Starts `args` under node, waits until `ready` resolves, then measures the quiet window. */
async function measure(args: string[], ready: (child: ChildProcess) => Promise<void>): Promise<{ cpuMsPerS: number; rssMiB: number }> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '' } });
  child.on('error', () => { /* reported as the ready timeout */ });
  child.stderr!.resume();
  try {
    await Promise.race([
      ready(child),
      new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`exited with ${code} before it was ready`)))),
      sleep(60_000).then(() => { throw new Error('not ready in 60 s'); }),
    ]);
    await sleep(SETTLE_MS);
    const a = usage(child.pid!);
    const t = performance.now();
    await sleep(WINDOW_MS);
    const b = usage(child.pid!);
    const seconds = (performance.now() - t) / 1000;
    return { cpuMsPerS: ((b.cpuS - a.cpuS) * 1000) / seconds, rssMiB: b.rssBytes / 2 ** 20 };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

/** How many rows `up` listed (its servers and extra rows). */
let servers = 0;

/** `wirelab up --json` prints its table as one JSON line once every server listens: that line is the ready signal. */
async function upIsReady(child: ChildProcess): Promise<void> {
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.startsWith('[')) {
      const rows = JSON.parse(line) as unknown[];
      servers = rows.length;
      return;
    }
  }
}

export default defineBench({
  name: 'idle',
  title: 'one idle `wirelab up` (every server listening, nothing connected) next to a bare node process',
  async run(): Promise<BenchRow[]> {
    // A port base away from the defaults, so a `wirelab up` the user has running is not disturbed.
    const base = 30_000 + Math.floor(Math.random() * 200) * 100;
    const up = await measure(['bin/wirelab.js', 'up', '--json', '--port-base', String(base)], upIsReady);
    const bare = await measure(['-e', 'process.stdout.write("ready\\n"); setInterval(() => {}, 1 << 30)'], async (c) => {
      for await (const _ of createInterface({ input: c.stdout! })) return;
    });
    return [
      { label: 'bare node, waiting: RSS', value: bare.rssMiB, unit: 'MiB', lowerIsBetter: true },
      { label: `wirelab up (${servers} servers), idle: RSS`, value: up.rssMiB, unit: 'MiB', baseline: 'bare node, waiting: RSS', lowerIsBetter: true },
      { label: 'bare node, waiting: CPU', value: bare.cpuMsPerS, unit: 'ms CPU/s', lowerIsBetter: true },
      { label: `wirelab up (${servers} servers), idle: CPU`, value: up.cpuMsPerS, unit: 'ms CPU/s', baseline: 'bare node, waiting: CPU', lowerIsBetter: true },
    ];
  },
});
