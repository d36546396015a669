import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import type { RunningServer } from '../../core/server.ts';
import { sleep } from '../../core/time.ts';

export interface CoturnOptions {
  /** Default 'wirelab'. */
  username?: string;
  /** Default 'wirelab'. */
  password?: string;
  /** Give up when turnserver has not started listening by then. Default 5000 ms. */
  startTimeoutMs?: number;
}

export interface RunningCoturn extends RunningServer {
  /** turn:127.0.0.1:PORT */
  url: string;
  username: string;
  password: string;
  pid: number;
  /** What turnserver printed (its log goes to stdout). */
  readonly log: string;
}

/** True when Debian's coturn is installed (`turnserver` on PATH). */
export function hasCoturn(): boolean {
  return spawnSync('sh', ['-c', 'command -v turnserver'], { stdio: 'ignore' }).status === 0;
}

/** A free UDP port on 127.0.0.1 (bound, read, released: another process could take it in between; rare). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Debian's coturn (`turnserver`) on 127.0.0.1 only: long-term credentials, no TLS, relays on loopback
 * (--allow-loopback-peers), its user database in a temporary folder. close() stops it by its PID.
 */
export async function startCoturn(options: CoturnOptions = {}): Promise<RunningCoturn> {
  const username = options.username ?? 'wirelab';
  const password = options.password ?? 'wirelab';
  const port = await freeUdpPort();
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-coturn-'));
  // A relay port range of 100 at a random place, so that two runs at once rarely meet.
  const minPort = 50_000 + Math.floor(Math.random() * 150) * 100;
  const args = [
    '-n',
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    `--min-port=${minPort}`,
    `--max-port=${minPort + 99}`,
    '--lt-cred-mech',
    `--user=${username}:${password}`,
    '--realm=wirelab',
    '--no-tls',
    '--no-dtls',
    '--no-tcp',
    '--no-cli',
    '--allow-loopback-peers',
    `--userdb=${join(dir, 'turndb')}`,
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    '--log-file=stdout',
  ];
  const proc = spawn('turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new WirelabError(ErrorCodes.TIMEOUT, `turnserver did not start within ${options.startTimeoutMs ?? 5000} ms:\n${log}`)), options.startTimeoutMs ?? 5000);
    const onData = (d: Buffer): void => {
      log += d.toString();
      if (/main listener thread/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new WirelabError(ErrorCodes.CLOSED, `turnserver: ${err.message}`, { cause: err }));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new WirelabError(ErrorCodes.CLOSED, `turnserver exited ${code}:\n${log}`));
    });
  });
  const close = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(2000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (err) {
    await close();
    throw err;
  }
  return {
    proto: 'turn',
    host: '127.0.0.1',
    port,
    url: `turn:127.0.0.1:${port}`,
    username,
    password,
    pid: proc.pid!,
    get log() {
      return log;
    },
    close,
  };
}
