import { mkdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { fsReason, PathRefused, type Resolved } from '../paths.ts';
import type { CommandTable, FtpSession } from '../session.ts';

/** RFC 959 257 replies quote the path, doubling any quote inside it. */
export const quotePath = (p: string): string => `"${p.replace(/"/g, '""')}"`;

/**
 * Resolves an FTP path inside the user's root, or answers 550 and returns undefined. The reply names neither the
 * argument nor the real path: only why.
 */
export async function resolveOr550(s: FtpSession, arg: string): Promise<Resolved | undefined> {
  try {
    return await s.jail!.resolve(s.cwd, arg);
  } catch (err) {
    const reason = err instanceof PathRefused ? err.reason : fsReason(err);
    s.trace('*', 'refused', `path refused: ${reason}`, { reason });
    void s.reply(550, `${reason}.`);
    return undefined;
  }
}

/** Runs a file system call; a failure becomes a 550 with a fixed text (the error message carries the real path). */
export async function fsOr550<T>(s: FtpSession, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    void s.reply(550, `${fsReason(err)}.`);
    return undefined;
  }
}

/** YYYYMMDDHHMMSS in UTC (RFC 3659 time-val). */
export function timeVal(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

async function changeDir(s: FtpSession, arg: string): Promise<void> {
  const r = await resolveOr550(s, arg);
  if (!r) return;
  const st = await fsOr550(s, () => stat(r.real));
  if (!st) return;
  if (!st.isDirectory()) return void s.reply(550, 'Not a directory.');
  s.cwd = r.virtual;
  void s.reply(250, `Directory changed to ${quotePath(r.virtual)}.`);
}

const fileCommandsBase: CommandTable = {
  PWD: { help: 'PWD', run: (s) => void s.reply(257, `${quotePath(s.cwd)} is the current directory.`) },
  XPWD: { help: 'XPWD', run: (s) => void s.reply(257, `${quotePath(s.cwd)} is the current directory.`) },
  CWD: { help: 'CWD <path>', needsArg: true, run: (s, arg) => changeDir(s, arg) },
  CDUP: { help: 'CDUP', run: (s) => changeDir(s, s.cwd === '/' ? '/' : '..') },
  XCUP: { help: 'XCUP', run: (s) => changeDir(s, s.cwd === '/' ? '/' : '..') },
  MKD: {
    help: 'MKD <path>',
    needsArg: true,
    writes: true,
    async run(s, arg) {
      const r = await resolveOr550(s, arg);
      if (!r) return;
      if ((await fsOr550(s, () => mkdir(r.real).then(() => true))) === undefined) return;
      void s.reply(257, `${quotePath(r.virtual)} created.`);
    },
  },
  RMD: {
    help: 'RMD <path>',
    needsArg: true,
    writes: true,
    async run(s, arg) {
      const r = await resolveOr550(s, arg);
      if (!r) return;
      if (r.virtual === '/') return void s.reply(550, 'Cannot remove your root.');
      if ((await fsOr550(s, () => rmdir(r.real).then(() => true))) === undefined) return;
      void s.reply(250, 'Directory removed.');
    },
  },
  DELE: {
    help: 'DELE <path>',
    needsArg: true,
    writes: true,
    async run(s, arg) {
      const r = await resolveOr550(s, arg);
      if (!r) return;
      const st = await fsOr550(s, () => stat(r.real));
      if (!st) return;
      if (st.isDirectory()) return void s.reply(550, 'Is a directory (use RMD).');
      if ((await fsOr550(s, () => rm(r.real).then(() => true))) === undefined) return;
      void s.reply(250, 'File deleted.');
    },
  },
  RNFR: {
    help: 'RNFR <path>',
    needsArg: true,
    writes: true,
    async run(s, arg) {
      s.renameFrom = undefined;
      const r = await resolveOr550(s, arg);
      if (!r) return;
      if (r.virtual === '/') return void s.reply(550, 'Cannot rename your root.');
      if (!(await fsOr550(s, () => stat(r.real)))) return;
      s.renameFrom = r;
      void s.reply(350, 'Ready for RNTO.');
    },
  },
  RNTO: {
    help: 'RNTO <path>',
    needsArg: true,
    writes: true,
    async run(s, arg) {
      const from = s.renameFrom;
      s.renameFrom = undefined;
      if (!from) return void s.reply(503, 'Send RNFR first.');
      const to = await resolveOr550(s, arg);
      if (!to) return;
      // Renaming onto an existing directory would replace (or fail on) it: refused, the directory is left alone.
      const target = await stat(to.real).catch(() => undefined);
      if (target?.isDirectory()) return void s.reply(550, 'Target is a directory.');
      if ((await fsOr550(s, () => rename(from.real, to.real).then(() => true))) === undefined) return;
      void s.reply(250, 'Rename successful.');
    },
  },
  SIZE: {
    help: 'SIZE <path>',
    needsArg: true,
    async run(s, arg) {
      const r = await resolveOr550(s, arg);
      if (!r) return;
      const st = await fsOr550(s, () => stat(r.real));
      if (!st) return;
      if (!st.isFile()) return void s.reply(550, 'Not a plain file.');
      if (s.type === 'I') return void s.reply(213, String(st.size));
      // RFC 3659: in ASCII the size is what would go over the wire, each bare LF counting two bytes.
      if (st.size > 16 * 1024 * 1024) return void s.reply(550, 'SIZE in TYPE A is only computed for files up to 16 MiB.');
      const buf = await readFile(r.real);
      let extra = 0;
      for (let i = 0; i < buf.length; i++) if (buf[i] === 0x0a && (i === 0 || buf[i - 1] !== 0x0d)) extra++;
      void s.reply(213, String(st.size + extra));
    },
  },
  MDTM: {
    help: 'MDTM <path>',
    needsArg: true,
    async run(s, arg) {
      const r = await resolveOr550(s, arg);
      if (!r) return;
      const st = await fsOr550(s, () => stat(r.real));
      if (!st) return;
      void s.reply(213, timeVal(st.mtime));
    },
  },
};

/** With the RFC 775 X-forms some old clients (Windows ftp.exe) still send. */
export const fileCommands: CommandTable = {
  ...fileCommandsBase,
  XMKD: { ...fileCommandsBase.MKD!, help: 'XMKD <path>' },
  XRMD: { ...fileCommandsBase.RMD!, help: 'XRMD <path>' },
  XCWD: { ...fileCommandsBase.CWD!, help: 'XCWD <path>' },
};
