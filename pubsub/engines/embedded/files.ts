/** Small metadata files (topic meta.json, group positions): write to a temp file, fsync it, rename, fsync the folder. */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';

let tmpSeq = 0;

/** Replaces `path` atomically with `value` as JSON; with `sync`, the new content survives a power loss once resolved. */
export async function writeJsonAtomic(path: string, value: unknown, sync: boolean): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${++tmpSeq}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(value));
    if (sync) await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  if (sync) {
    const d = await open(dirname(path), 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

/**
 * The parsed JSON at `path`, or undefined when the file does not exist. Unparsable JSON (written atomically, so only
 * damage or a hand edit makes it) rejects with WL_ERR_PUBSUB_CORRUPT naming the file, rather than starting from nothing.
 */
export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PubsubError(ErrorCodes.PUBSUB_CORRUPT, `${path}: not JSON`, { cause: err });
  }
}
