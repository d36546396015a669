/**
 * `npm start &` and `npx wirelab up &`, stopped with `kill -TERM <that PID>`: npm forwards SIGTERM to its `sh -c`,
 * which dies without passing it on, so the node process must notice on its own (bin/stop.ts) and close every port.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { defaultWatchParent } from '../../bin/stop.ts';
import type { Endpoint } from '../helpers/up.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Parent PID of every process now (from /proc/<pid>/stat; the command name may hold spaces and parentheses). */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function descendants(pid: number): number[] {
  const ppid = parents();
  const found: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of ppid) {
      if (parent !== p) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** Starts the command with `--port-base 0 --json` and waits for the endpoint line (npm prints its banner first). */
function startBackground(cmd: string, args: string[]): Promise<{ proc: ChildProcess; endpoints: Endpoint[]; wirelabPids: number[] }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} printed no endpoints in 60 s:\n${out}\n${err}`)), 60_000);
    proc.on('error', reject);
    proc.stderr!.on('data', (d) => (err += d));
    proc.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('[{'));
      if (!line || !out.includes(line + '\n')) return;
      clearTimeout(timer);
      // The node processes under npm: the one running bin/wirelab.js is the server.
      const wirelabPids = descendants(proc.pid!).filter((p) => {
        try {
          const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          return (argv[0] === process.execPath || argv[0]!.split('/').pop() === 'node') && argv.some((a) => /wirelab(\.js)?$/.test(a));
        } catch {
          return false;
        }
      });
      resolve({ proc, endpoints: JSON.parse(line) as Endpoint[], wirelabPids });
    });
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

for (const [label, cmd, args] of [
  ['npm start', 'npm', ['start', '--', '--port-base', '0', '--json']],
  ['npx wirelab up', 'npx', ['--no-install', 'wirelab', 'up', '--port-base', '0', '--json']],
] as const) {
  test(`${label} in the background, kill -TERM <its PID>: the node process exits and every port closes`, { timeout: 120_000 }, async () => {
    const { proc, endpoints, wirelabPids: node } = await startBackground(cmd, [...args]);
    try {
      assert.ok(node.length > 0, `found the node process running wirelab under ${cmd} (${proc.pid})`);
      const tcpPorts = endpoints.filter((e) => e.proto !== 'udp').map((e) => e.port);
      assert.equal(await refused(tcpPorts[0]!), false, 'listening before the kill');
      process.kill(proc.pid!, 'SIGTERM');
      assert.ok(await waitFor(() => node.every((p) => !alive(p)), 10_000), `the node process ${node.join(', ')} is still running 10 s after kill -TERM ${proc.pid}`);
      for (const port of tcpPorts) assert.ok(await refused(port), `port ${port} still accepts after the stop`);
    } finally {
      for (const p of [proc.pid!, ...node]) if (alive(p)) process.kill(p, 'SIGKILL');
    }
  });
}

test('the parent is watched under npm / npx only, unless WIRELAB_WATCH_PARENT says otherwise', () => {
  assert.equal(defaultWatchParent({ npm_lifecycle_event: 'start' }), true);
  assert.equal(defaultWatchParent({ npm_lifecycle_event: 'npx' }), true);
  assert.equal(defaultWatchParent({}), false);
  assert.equal(defaultWatchParent({ WIRELAB_WATCH_PARENT: '1' }), true);
  assert.equal(defaultWatchParent({ npm_lifecycle_event: 'start', WIRELAB_WATCH_PARENT: '0' }), false);
});

test('a parent gone before untilStopped() is called stops at once (a kill -TERM that landed while the servers started)', async () => {
  const { untilStopped, STARTED_UNDER } = await import('../../bin/stop.ts');
  assert.equal(STARTED_UNDER, process.ppid, 'the parent at start is recorded');
  assert.equal(await untilStopped({ watchParent: true, parent: process.ppid + 100_000 }), 'parent-exited');
});
