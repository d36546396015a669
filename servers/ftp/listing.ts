import { lstat, opendir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { timeVal } from './commands/files.ts';
import type { Jail } from './paths.ts';

export interface Entry {
  name: string;
  /** Stats of what the entry is; for a symlink, of its target when that is inside the root. */
  st: Stats;
  /** A symlink whose target is outside the root (or missing): listed, never followed. */
  blockedLink: boolean;
}

/**
 * The entries of a folder, at most `max` (`truncated` says when there were more). A symlink is shown as what it points
 * to when that stays inside the root, and as a bare link otherwise; its target path is never shown.
 */
export async function readEntries(jail: Jail, dirVirtual: string, dirReal: string, max: number): Promise<{ entries: Entry[]; truncated: boolean }> {
  const entries: Entry[] = [];
  let truncated = false;
  const dir = await opendir(dirReal);
  for await (const d of dir) {
    if (entries.length >= max) {
      truncated = true;
      break;
    }
    const real = join(dirReal, d.name);
    let st: Stats;
    try {
      st = await lstat(real);
    } catch {
      continue;
    }
    let blockedLink = false;
    if (st.isSymbolicLink()) {
      try {
        const r = await jail.resolve(dirVirtual, d.name);
        st = await stat(r.real);
      } catch {
        blockedLink = true;
      }
    }
    entries.push({ name: d.name, st, blockedLink });
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  return { entries, truncated };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function lsDate(d: Date): string {
  const day = String(d.getUTCDate()).padStart(2, ' ');
  const sixMonths = 182 * 24 * 3600 * 1000;
  const recent = Math.abs(Date.now() - d.getTime()) < sixMonths;
  const tail = recent
    ? `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`
    : ` ${d.getUTCFullYear()}`;
  return `${MONTHS[d.getUTCMonth()]} ${day} ${tail}`;
}

function modeString(st: Stats): string {
  const bits = 'rwxrwxrwx';
  let out = '';
  for (let i = 0; i < 9; i++) out += st.mode & (1 << (8 - i)) ? bits[i] : '-';
  return out;
}

/** One `ls -l` line as most servers send for LIST. Owner and group are fixed: local user names are not shown. */
export function lsLine(e: Entry): string {
  const kind = e.blockedLink ? 'l' : e.st.isDirectory() ? 'd' : '-';
  const size = e.blockedLink ? 0 : e.st.size;
  return `${kind}${e.blockedLink ? 'rwxrwxrwx' : modeString(e.st)} 1 ftp ftp ${String(size).padStart(12)} ${lsDate(e.st.mtime)} ${e.name}`;
}

/** RFC 3659 facts for MLSD / MLST (without the name). */
export function mlsxFacts(e: Pick<Entry, 'st' | 'blockedLink'>, readOnly: boolean, type?: string): string {
  if (e.blockedLink) return 'type=OS.unix=symlink;';
  const dir = e.st.isDirectory();
  const perm = dir ? (readOnly ? 'el' : 'elcmfp') : readOnly ? 'r' : 'rwadf';
  const t = type ?? (dir ? 'dir' : 'file');
  return `type=${t};${dir ? '' : `size=${e.st.size};`}modify=${timeVal(e.st.mtime)};perm=${perm};`;
}
