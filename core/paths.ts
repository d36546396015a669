import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where wirelab keeps what it makes once (certificates, later mail and FTP roots):
 * $WIRELAB_DATA_DIR, else $XDG_DATA_HOME/wirelab, else ~/.local/share/wirelab.
 */
export function dataDir(): string {
  if (process.env.WIRELAB_DATA_DIR) return process.env.WIRELAB_DATA_DIR;
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'wirelab');
}

/**
 * '.ts' when wirelab runs from its sources (the checkout, through tsx), '.js' when it runs from the built package
 * (dist/, plain Node). For the few places that name a module file at run time: lab files, the kernel-mode peer.
 */
export const MODULE_EXT: '.ts' | '.js' = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** True for a module file of this build: `x.ts` from the sources, `x.js` from dist/ (never a `.d.ts`). */
export function isModuleFile(name: string): boolean {
  return name.endsWith(MODULE_EXT) && !name.endsWith('.d.ts');
}

/** The package's root (where package.json is): this file is core/paths.ts there, or dist/core/paths.js. */
export const PACKAGE_ROOT = fileURLToPath(new URL(MODULE_EXT === '.ts' ? '../' : '../../', import.meta.url));

/**
 * The export condition under which `wirelab/...` resolves to the .ts sources instead of dist/ (package.json
 * "exports"): the checkout's CLI shim, its test runner and the external-lab hooks turn it on.
 */
export const SOURCE_CONDITION = 'wirelab-source';
