import type { Dir, WireMask } from '../../../core/trace/index.ts';

/** A `"password": "..."` or `"token": "..."` field of the hello's JSON header. */
const SECRET = /("(?:password|token)"\s*:\s*")((?:[^"\\]|\\.)*)"/g;

/**
 * Masks the hello's password and token (JSON header of a length-prefixed frame) with `*` of the same length, so an
 * exported capture still parses and never holds them. Client bytes are looked at until the server first answers
 * (the welcome comes after the hello); one per connection.
 */
export function helloMask(): WireMask {
  let answered = false;
  return (chunk: Buffer, dir: Dir): Buffer => {
    if (dir !== '>') {
      answered = true;
      return chunk;
    }
    if (answered) return chunk;
    const text = chunk.toString('latin1');
    const masked = text.replace(SECRET, (_m, head: string, value: string) => `${head}${'*'.repeat(value.length)}"`);
    return masked === text ? chunk : Buffer.from(masked, 'latin1');
  };
}
