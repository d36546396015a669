import { ErrorCodes, WirelabError } from '../errors.ts';
import type { Lab, LabDefinition } from './types.ts';

const ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Checks a lab definition and returns it. Every lab file's default export is one of these. */
export function defineLab(def: LabDefinition): Lab {
  const problems: string[] = [];
  if (typeof def?.id !== 'string' || !ID.test(def.id)) problems.push('id must be kebab-case (a-z, 0-9, -)');
  if (typeof def?.title !== 'string' || def.title.length === 0) problems.push('title is required');
  if (typeof def?.concept !== 'string' || def.concept.length === 0) problems.push('concept is required');
  if (!Array.isArray(def?.protocols)) problems.push('protocols must be an array of names');
  if (typeof def?.run !== 'function') problems.push('run(ctx) must be a function');
  if (def?.timeoutMs !== undefined && !(Number.isInteger(def.timeoutMs) && def.timeoutMs > 0)) {
    problems.push('timeoutMs must be a positive integer');
  }
  if (problems.length > 0) {
    throw new WirelabError(ErrorCodes.LAB_INVALID, `invalid lab${def?.id ? ` ${def.id}` : ''}: ${problems.join('; ')}`);
  }
  return Object.freeze({ ...def });
}
