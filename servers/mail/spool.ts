import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** A message received whole and within the limit: its bytes, and the spool file they are also in (disk stores). */
export interface SpooledMessage {
  raw: Buffer;
  /** The complete spool file, for the store to link into place instead of writing the bytes again. */
  file?: string;
}

/**
 * Where SMTP DATA goes while it arrives. Bytes are counted as they stream; past `limit` nothing more is kept (the file
 * is dropped at once), so an oversized message costs no memory and no disk however large it is. Within the limit the
 * bytes go to a file in the store's `.tmp` folder (or, for a memory store, to a list of chunks bounded by the limit).
 * `write` returns false when the file wants the sender to wait (call `onDrain`), so TCP flow control reaches the client.
 */
export class MessageSpool {
  /** Bytes seen, kept or not. */
  bytes = 0;
  #chunks: Buffer[] | null = null;
  #file: WriteStream | null = null;
  readonly #path: string | null;
  #error: Error | null = null;
  #dropped = false;

  constructor(
    dir: string | null,
    readonly limit: number,
  ) {
    this.#path = dir === null ? null : join(dir, `${randomUUID()}.spool`);
    if (this.#path === null) {
      this.#chunks = [];
    } else {
      this.#file = createWriteStream(this.#path, { mode: 0o600 });
      this.#file.on('error', (err) => {
        this.#error ??= err;
      });
    }
  }

  get overLimit(): boolean {
    return this.bytes > this.limit;
  }

  /** The spool file's path while one exists (tests check it is gone afterwards). */
  get path(): string | null {
    return this.#path;
  }

  write(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.overLimit) {
      this.#drop();
      return true;
    }
    if (this.#chunks) {
      this.#chunks.push(chunk);
      return true;
    }
    if (this.#error || !this.#file) return true;
    return this.#file.write(chunk);
  }

  /** Calls `fn` once the file has taken what it was given (at once when nothing waits). */
  onDrain(fn: () => void): void {
    if (!this.#file || this.#dropped || !this.#file.writableNeedDrain) return fn();
    const done = (): void => {
      this.#file?.off('drain', done);
      this.#file?.off('close', done);
      fn();
    };
    this.#file.once('drain', done);
    this.#file.once('close', done);
  }

  /** Stops keeping bytes: frees the chunks, closes and removes the file. */
  #drop(): void {
    if (this.#dropped) return;
    this.#dropped = true;
    this.#chunks = null;
    if (this.#file) {
      const file = this.#file;
      this.#file = null;
      file.destroy();
      file.once('close', () => void rm(this.#path!, { force: true }).catch(() => undefined));
    }
  }

  /**
   * The whole message once the sender has finished, or null when it was over the limit. Rejects when the file could
   * not be written (the caller answers 451 and calls `discard`).
   */
  async finish(): Promise<SpooledMessage | null> {
    if (this.overLimit) {
      this.#drop();
      return null;
    }
    if (this.#chunks) return { raw: Buffer.concat(this.#chunks) };
    const file = this.#file!;
    await new Promise<void>((resolve, reject) => {
      if (this.#error) return reject(this.#error);
      file.once('error', reject);
      file.end(() => resolve());
    });
    if (this.#error) throw this.#error;
    // The store keeps every message in memory as well (its mailboxes are served from memory): read it back once.
    return { raw: await readFile(this.#path!), file: this.#path! };
  }

  /** Removes whatever is left (after a refusal, a failure or delivery). Safe to call more than once. */
  async discard(): Promise<void> {
    this.#drop();
    if (this.#path !== null) await rm(this.#path, { force: true }).catch(() => undefined);
  }
}
