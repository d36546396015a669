import { readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCodes, WirelabError } from '../errors.ts';
import { isModuleFile, MODULE_EXT, SOURCE_CONDITION } from '../paths.ts';
import { defineLab } from './define.ts';
import type { Lab } from './types.ts';

/** The project's labs/ folder: one lab per file, the file named after the lab's id. */
export const LABS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'labs');

const registeredRoots = new Set<string>();
/** From the sources a TypeScript loader already runs this file; the built package registers tsx on first need. */
let tsxRegistered = MODULE_EXT === '.ts';

/**
 * Lets a lab file outside this package load as it would inside: `.ts` as an ES module and `import ... from 'wirelab'`
 * resolved to this package when its folder has no node_modules/wirelab (core/lab/external-hooks.ts). From the built
 * package (plain Node) tsx's hooks are registered first, so a user's lab and its helpers may be TypeScript.
 */
async function allowExternal(file: string): Promise<void> {
  const root = pathToFileURL(dirname(file) + sep).href;
  if (registeredRoots.has(root)) return;
  registeredRoots.add(root);
  if (!tsxRegistered) {
    tsxRegistered = true;
    const tsx = await import('tsx/esm/api');
    tsx.register();
  }
  register(`./external-hooks${MODULE_EXT}`, import.meta.url, {
    data: {
      roots: [root],
      selfParent: pathToFileURL(join(LABS_DIR, '..', 'core', `index${MODULE_EXT}`)).href,
      // From the sources, 'wirelab/...' must resolve to the .ts files, not to a dist/ that may not exist.
      conditions: MODULE_EXT === '.ts' ? [SOURCE_CONDITION] : [],
    },
  });
}

/** True when the argument names a file rather than a lab id. */
export function looksLikePath(arg: string): boolean {
  return arg.includes('/') || arg.includes('\\') || /\.(?:[cm]?[jt]s)$/.test(arg);
}

async function importLab(file: string): Promise<Lab> {
  let mod: { default?: unknown; lab?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as typeof mod;
  } catch (err) {
    throw new WirelabError(ErrorCodes.LAB_INVALID, `${file} could not be loaded: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const def = mod.default ?? mod.lab;
  if (!def) {
    throw new WirelabError(ErrorCodes.LAB_INVALID, `${file} has no default export (export default defineLab({...}))`);
  }
  return { ...defineLab(def as Lab), file };
}

/** Ids of the labs in labs/, sorted. */
export async function labIds(): Promise<string[]> {
  const files = await readdir(LABS_DIR);
  return files
    .filter((f) => isModuleFile(f) && !f.startsWith('_'))
    .map((f) => f.slice(0, -MODULE_EXT.length))
    .sort();
}

/** A lab by id (from labs/) or by path to the user's own file. */
export async function loadLab(idOrPath: string): Promise<Lab> {
  if (looksLikePath(idOrPath)) {
    const file = resolve(idOrPath);
    if (!existsSync(file)) throw new WirelabError(ErrorCodes.LAB_NOT_FOUND, `no lab file at ${file}`);
    await allowExternal(file);
    return importLab(file);
  }
  const ids = await labIds();
  if (!ids.includes(idOrPath)) {
    throw new WirelabError(ErrorCodes.LAB_NOT_FOUND, `no lab "${idOrPath}"; labs: ${ids.join(', ')}`);
  }
  const lab = await importLab(join(LABS_DIR, `${idOrPath}${MODULE_EXT}`));
  if (lab.id !== idOrPath) {
    throw new WirelabError(ErrorCodes.LAB_INVALID, `labs/${idOrPath}.ts defines id "${lab.id}": the file name must be the id`);
  }
  return lab;
}

export async function loadAllLabs(): Promise<Lab[]> {
  const labs: Lab[] = [];
  for (const id of await labIds()) labs.push(await loadLab(id));
  return labs;
}
