import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI } from './cli.ts';

export interface CliPeer {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  /** Resolves with the first match of `re` in stdout or stderr (as chosen), rejects after `ms`. */
  wait(stream: 'out' | 'err', re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/** `wirelab webrtc <args>` as a real process, its stdin a pipe the test writes to. */
export function startPeer(args: string[]): CliPeer {
  const child = spawn(process.execPath, [CLI, 'webrtc', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const text = { out: '', err: '' };
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d) => ((text.out += d), waiters.forEach((w) => w())));
  child.stderr.on('data', (d) => ((text.err += d), waiters.forEach((w) => w())));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    out: () => text.out,
    err: () => text.err,
    exited,
    wait: (stream, re, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(text[stream]);
          if (!m) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${re} on std${stream} within ${ms} ms:\n${text.out}\n${text.err}`));
        }, ms);
        waiters.add(check);
        check();
      }),
  };
}
