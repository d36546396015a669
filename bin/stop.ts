import { checkInt } from '../core/options.ts';

/**
 * When `wirelab up` should stop: SIGINT (Ctrl-C), SIGTERM, or, when npm or npx started it, its parent gone.
 *
 * Why the parent: `npm start &` runs npm → sh -c → node. `kill -TERM <npm's PID>` makes npm forward SIGTERM to the
 * shell, which dies of it without passing it on, and node is left behind, reparented, with every port open. npx
 * (npm exec) has the same shape. So under npm (npm_lifecycle_event is set) the process also stops once its parent
 * PID changes. Started directly (`node bin/wirelab.js up &`, nohup) it does not, so it outlives its shell as asked.
 *
 * SIGHUP is left at its default (the process ends, so no port stays open): a handler would override the SIG_IGN that
 * `nohup wirelab up` relies on.
 */
export interface StopOptions {
  /** Stop when the parent process goes away. Default: true when run by npm or npx (WIRELAB_WATCH_PARENT=0/1 overrides). */
  watchParent?: boolean;
  /** How often the parent is checked. Default 250 ms. */
  pollMs?: number;
  /** The parent to watch. Default: the parent this process had when it started (see STARTED_UNDER). */
  parent?: number;
}

/**
 * The parent PID at process start: bin/wirelab.js reads it first thing (loading the CLI through tsx takes a while),
 * else this module's load. Not read when untilStopped() is called: a `kill -TERM` that lands while the servers are
 * still starting (a loaded machine, a script that kills as soon as the first line appears) reparents node before
 * untilStopped() runs, and a parent read then would be init's, which never goes away. CI saw exactly that once.
 */
export const STARTED_UNDER: number = (globalThis as { wirelabStartedUnder?: number }).wirelabStartedUnder ?? process.ppid;

export type StopReason = 'SIGINT' | 'SIGTERM' | 'parent-exited';

export function defaultWatchParent(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WIRELAB_WATCH_PARENT === '0' || env.WIRELAB_WATCH_PARENT === '1') return env.WIRELAB_WATCH_PARENT === '1';
  return Boolean(env.npm_lifecycle_event);
}

export function untilStopped(options: StopOptions = {}): Promise<StopReason> {
  const watchParent = options.watchParent ?? defaultWatchParent();
  const pollMs = options.pollMs ?? 250;
  checkInt('pollMs', pollMs, 10, 3600_000);
  return new Promise((resolve) => {
    const parent = options.parent ?? STARTED_UNDER;
    let poll: NodeJS.Timeout | undefined;
    const stop = (reason: StopReason): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      clearInterval(poll);
      resolve(reason);
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    if (watchParent) {
      // process.ppid asks the kernel each time; a reparented process sees init's or a subreaper's PID.
      if (process.ppid !== parent) return stop('parent-exited');
      poll = setInterval(() => process.ppid !== parent && stop('parent-exited'), pollMs);
      poll.unref();
    }
  });
}
