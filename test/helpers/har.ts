import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// har-validator (the HAR 1.2 JSON schema with ajv 6) has no types; its promise API resolves or rejects with `errors`.
const validator = require('har-validator/lib/promise') as { har(data: unknown): Promise<unknown> };

/** The schema errors of a HAR document (empty when it is valid HAR 1.2). */
export async function harErrors(har: unknown): Promise<string[]> {
  try {
    await validator.har(har);
    return [];
  } catch (err) {
    const errors = (err as { errors?: Array<{ dataPath?: string; instancePath?: string; message?: string }> }).errors;
    if (!errors) throw err;
    return errors.map((e) => `${e.dataPath ?? e.instancePath ?? ''} ${e.message ?? ''}`);
  }
}
