import { ErrorCodes, WirelabError } from '../errors.ts';
import { checkParamSpecs, type LabParamSpecs } from './params.ts';
import type { Lab, LabDefinition } from './types.ts';

const ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Checks a lab definition and returns it. Every lab file's default export is one of these. */
export function defineLab<P extends LabParamSpecs = LabParamSpecs>(def: LabDefinition<P>): Lab {
  const problems: string[] = [];
  if (typeof def?.id !== 'string' || !ID.test(def.id)) problems.push('id must be kebab-case (a-z, 0-9, -)');
  if (typeof def?.title !== 'string' || def.title.length === 0) problems.push('title is required');
  if (typeof def?.concept !== 'string' || def.concept.length === 0) problems.push('concept is required');
  if (!Array.isArray(def?.protocols)) problems.push('protocols must be an array of names');
  if (typeof def?.run !== 'function') problems.push('run(ctx) must be a function');
  if (def?.timeoutMs !== undefined && !(Number.isInteger(def.timeoutMs) && def.timeoutMs > 0)) {
    problems.push('timeoutMs must be a positive integer');
  }
  if (def?.checkParams !== undefined && typeof def.checkParams !== 'function') problems.push('checkParams must be a function');
  problems.push(...checkParamSpecs(String(def?.id), def?.params));
  if (problems.length > 0) {
    throw new WirelabError(ErrorCodes.LAB_INVALID, `invalid lab${def?.id ? ` ${def.id}` : ''}: ${problems.join('; ')}`);
  }
  return Object.freeze({ ...def }) as Lab;
}
