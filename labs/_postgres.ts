/**
 * A throwaway PostgreSQL for labs (Debian's `postgresql` package): `initdb` in a temp dir, `postgres` on a free
 * 127.0.0.1 port, started and stopped by PID. PostgreSQL refuses to run as root, so as root the temp dir is given to
 * the `postgres` user and both programs run under `runuser -u postgres --`. Files starting with _ are not labs.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { closedPort } from '../core/ports.ts';
import { sleep } from '../core/time.ts';

const run = promisify(execFile);

/** The newest installed PostgreSQL's bin dir (`/usr/lib/postgresql/<major>/bin`; WIRELAB_POSTGRES_ROOT moves the root), or undefined. */
export function postgresBin(): string | undefined {
  const ROOT = process.env.WIRELAB_POSTGRES_ROOT ?? '/usr/lib/postgresql';
  if (!existsSync(ROOT)) return undefined;
  const majors = readdirSync(ROOT).filter((d) => /^\d+$/.test(d) && existsSync(join(ROOT, d, 'bin', 'postgres')));
  majors.sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(ROOT, majors[0], 'bin') : undefined;
}

export interface Postgres {
  readonly port: number;
  readonly pid: number;
  /** libpq connection settings for the `pg` client (user `wirelab`, database `postgres`, trust auth on 127.0.0.1). */
  readonly connection: pg.ClientConfig;
  /** A new connected client; closed by stop() if still open. */
  connect(): Promise<pg.Client>;
  /** CPU time (ms) the server's processes (postmaster and every backend) have used so far, from /proc. */
  cpuMs(): number;
  /** Fast shutdown (SIGINT) by PID, SIGKILL after 5 s; the temp dir is removed. */
  stop(): Promise<void>;
}

function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Starts PostgreSQL. `fsync=off` and `synchronous_commit=off`: the labs measure how a database behaves as a queue,
 * not the disk, and a lab must not be slowed by one; durability is not what is shown here.
 */
export async function startPostgres(options: { startTimeoutMs?: number } = {}): Promise<Postgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (Debian package postgresql; `npm run peers` installs it)');
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-pg-'));
  const asRoot = process.getuid?.() === 0;
  const wrap = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (asRoot) await chown(dir, Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout));
  const data = join(dir, 'data');
  const [initCmd, initArgs] = wrap(join(bin, 'initdb'), ['-D', data, '-U', 'wirelab', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  await run(initCmd, initArgs, { cwd: dir });
  const port = await closedPort('tcp');
  const [cmd, args] = wrap(join(bin, 'postgres'), [
    '-D', data, '-h', '127.0.0.1', '-p', String(port), '-k', dir,
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=40',
    // The server's own count of every statement it ran (labs read it back: `CREATE EXTENSION pg_stat_statements`).
    '-c', 'shared_preload_libraries=pg_stat_statements',
  ]);
  const child: ChildProcess = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-16_384)));
  child.on('error', (err) => (log += `\n${err.message}`));
  let exited = false;
  const done = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const connection: pg.ClientConfig = { host: '127.0.0.1', port, user: 'wirelab', database: 'postgres' };
  const clients = new Set<pg.Client>();
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client(connection);
    c.on('error', () => undefined); // a backend ended by stop(): the query in flight rejects, the process goes on
    await c.connect();
    clients.add(c);
    c.once('end', () => clients.delete(c));
    return c;
  };
  // runuser forks: the server is runuser's child. Its PID is what we stop and what the CPU is counted from.
  const serverPid = (): number => (asRoot ? (childrenOf(child.pid!)[0] ?? 0) : child.pid!);
  const stop = async (): Promise<void> => {
    await Promise.allSettled([...clients].map((c) => c.end()));
    const pid = serverPid();
    if (!exited) {
      try {
        // The server by its PID (fast shutdown); if it cannot be found under runuser, runuser passes the signal on.
        if (pid) process.kill(pid, 'SIGINT');
        else child.kill('SIGTERM');
      } catch {
        // already gone
      }
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    try {
      const probe = await connect();
      await probe.end();
      break;
    } catch (err) {
      if (exited || performance.now() > deadline) {
        await stop();
        throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log.trim()}`);
      }
      await sleep(50);
    }
  }
  const pid = serverPid();
  return {
    port,
    pid,
    connection,
    connect,
    cpuMs: () => [pid, ...childrenOf(pid)].reduce((sum, p) => sum + cpuOf(p), 0),
    stop,
  };
}
