/** The file log's disk primitives: vectored writes at a position, fdatasync, a directory's fsync (callback fs API). */
import fs, { promises as fsp } from 'node:fs';

/**
 * Writes the frames at `position` with pwritev (no Buffer.concat of the batch), through the callback API: one
 * request per batch, without the FileHandle promise machinery (CPU per batch counts when batches are small).
 */
export function writeFrames(fd: number, frames: Buffer[], bytes: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // pwritev takes at most IOV_MAX (1024) buffers; longer batches go as one buffer.
    const bufs = frames.length > 1024 ? [Buffer.concat(frames, bytes)] : frames;
    const done = (err: NodeJS.ErrnoException | null, written: number): void => {
      if (err) return reject(err);
      if (written === bytes) return resolve();
      // A short write (rare on a regular file): the rest as one buffer, until all of it is down.
      const rest = Buffer.concat(bufs, bytes).subarray(written);
      writeRest(fd, rest, position + written).then(resolve, reject);
    };
    if (bufs.length === 1) fs.write(fd, bufs[0]!, 0, bytes, position, done);
    else fs.writev(fd, bufs, position, done);
  });
}

async function writeRest(fd: number, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const written = await new Promise<number>((resolve, reject) => fs.write(fd, buf, done, buf.length - done, position + done, (err, n) => (err ? reject(err) : resolve(n))));
    done += written;
  }
}

export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export async function syncDir(dir: string): Promise<void> {
  const fd = await fsp.open(dir, 'r').catch(() => null);
  if (!fd) return;
  await fd.sync().catch(() => {});
  await fd.close().catch(() => {});
}
