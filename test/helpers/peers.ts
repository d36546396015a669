import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** True when `command` is on PATH. */
export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * For a test that needs a program from a Debian package: true when it is there. Otherwise the test is skipped with a
 * message naming the package (`npm run peers` installs them all) — except under CI=true, where a missing peer fails.
 */
export function requirePeer(t: TestContext, command: string, debianPackage: string): boolean {
  if (hasCommand(command)) return true;
  const message = `needs ${command} (Debian package ${debianPackage}; npm run peers installs it)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${message}`);
  t.skip(message);
  return false;
}
