import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './run.ts';

export const CLI = fileURLToPath(new URL('../../bin/wirelab.js', import.meta.url));

export type CliResult = RunResult;

/** Runs `wirelab <args>` as a real process and collects its output; rejects if it has not finished in time. */
export async function runCli(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const r = await run(process.execPath, [CLI, ...args], { timeoutMs, ...(options.env ? { env: options.env } : {}) });
  if (r.code === null) throw new Error(`wirelab ${args.join(' ')} did not finish in ${timeoutMs} ms\n${r.stdout}\n${r.stderr}`);
  return r;
}
