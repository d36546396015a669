import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { PathRefused } from './errors.ts';

/**
 * Path confinement. A user sees only its root, as `/`. Every path argument goes through `Jail.resolve`: the FTP path is
 * normalised without ever stepping above `/`, mapped under the root, and the real location (symlinks followed) must
 * still lie inside the root. Anything else is refused with 550 and a reply that names only the FTP path, never the
 * real one.
 */
export { PathRefused } from './errors.ts';

export interface Resolved {
  /** The path as the user sees it, always absolute (`/docs/a.txt`). Safe to put in a reply. */
  virtual: string;
  /** The real path on disk. Never put in a reply or a trace. */
  real: string;
}

// Percent-encoded dot, slash, backslash or NUL: a client passing these means something other than a literal name.
const ENCODED = /%(?:2e|2f|5c|00)/i;

/** Normalises `arg` against `cwd` (both FTP paths); throws PathRefused if it would leave `/` or is malformed. */
export function virtualPath(cwd: string, arg: string): string {
  if (arg.includes('\0')) throw new PathRefused('NUL in path');
  if (arg.includes('\\')) throw new PathRefused('backslash in path');
  if (ENCODED.test(arg)) throw new PathRefused('encoded characters in path');
  if (/^[a-zA-Z]:/.test(arg) || arg.startsWith('~')) throw new PathRefused('not a path inside your root');
  const stack = arg.startsWith('/') ? [] : cwd.split('/').filter(Boolean);
  for (const seg of arg.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (stack.length === 0) throw new PathRefused('outside your root');
      stack.pop();
    } else stack.push(seg);
  }
  return '/' + stack.join('/');
}

export class Jail {
  /** `root` must already be a real path (see Jail.open). */
  private constructor(readonly root: string) {}

  static async open(root: string): Promise<Jail> {
    return new Jail(await realpath(root));
  }

  #inside(p: string): boolean {
    return p === this.root || p.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep);
  }

  /**
   * The real path for an FTP path. When it exists, its symlinks are followed and the target must be inside the root.
   * When it does not (a file about to be stored), its nearest existing parent is checked the same way, and a dangling
   * symlink in its place is refused (writing through it would create a file wherever it points).
   */
  async resolve(cwd: string, arg: string): Promise<Resolved> {
    const virtual = virtualPath(cwd, arg);
    const mapped = join(this.root, ...virtual.split('/').filter(Boolean));
    return { virtual, real: await this.#confine(mapped) };
  }

  async #confine(mapped: string): Promise<string> {
    let real: string;
    try {
      real = await realpath(mapped);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PathRefused(fsReason(err));
      const isLink = await lstat(mapped).then((st) => st.isSymbolicLink(), () => false);
      if (isLink) throw new PathRefused('symbolic link to nowhere inside your root');
      if (mapped === this.root || dirname(mapped) === mapped) throw new PathRefused('root is missing');
      // Only the last part may be missing (a file or folder about to be made): its parent must exist, inside the root.
      const parent = await realpath(dirname(mapped)).catch((e: unknown) => {
        throw new PathRefused(fsReason(e));
      });
      real = join(parent, basename(mapped));
    }
    if (!this.#inside(real)) throw new PathRefused('outside your root');
    return real;
  }
}

/** A reply text for a failed file system call, without the real path the error message carries. */
export function fsReason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException)?.code) {
    case 'ENOENT':
      return 'No such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'Permission denied';
    case 'EISDIR':
      return 'Is a directory';
    case 'ENOTDIR':
      return 'Not a directory';
    case 'ENOTEMPTY':
      return 'Directory not empty';
    case 'EEXIST':
      return 'Already exists';
    case 'ELOOP':
      return 'Too many symbolic links';
    case 'ENAMETOOLONG':
      return 'Name too long';
    default:
      return 'Requested action not taken';
  }
}
