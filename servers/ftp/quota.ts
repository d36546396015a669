import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Bytes held under `root` (symlinks are not followed, so nothing outside counts). Stops after `maxEntries` entries and
 * reports what it counted so far: a quota check on a huge tree errs on the side of allowing the upload.
 */
export async function usedBytes(root: string, maxEntries = 100_000): Promise<number> {
  let total = 0;
  let seen = 0;
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (++seen > maxEntries) return;
      const p = join(dir, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) total += st.size;
    }
  };
  await walk(root);
  return total;
}

/**
 * Bytes that uploads in progress under one root have received so far. Every upload checks the quota against the bytes
 * settled on disk plus this shared count, so two uploads running at once cannot each use the whole remaining quota.
 */
export class InFlight {
  bytes = 0;
}

/** One InFlight per real root, shared by every session of a server. */
export class InFlightByRoot {
  readonly #map = new Map<string, InFlight>();
  get(root: string): InFlight {
    let f = this.#map.get(root);
    if (!f) this.#map.set(root, (f = new InFlight()));
    return f;
  }
}
