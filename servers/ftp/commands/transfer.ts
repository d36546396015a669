import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat, truncate } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CrlfToLf, LfToCrlf, type DataConnection } from '../data.ts';
import { lsLine, mlsxFacts, readEntries } from '../listing.ts';
import type { Resolved } from '../paths.ts';
import { usedBytes, type InFlight } from '../quota.ts';
import type { CommandTable, FtpSession } from '../session.ts';
import { QuotaExceeded } from '../errors.ts';
import { fsOr550, resolveOr550 } from './files.ts';


/**
 * Counts the bytes that pass. With a budget it is an upload: each byte also counts in the root's shared in-flight
 * total, and the stream fails once `base` (bytes settled on disk) plus that total passes `quota`.
 */
class Counter extends Transform {
  bytes = 0;
  constructor(public budget?: { inflight: InFlight; base: number; quota: number }) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const b = this.budget;
    if (b) {
      b.inflight.bytes += chunk.length;
      if (b.base + b.inflight.bytes > b.quota) return cb(new QuotaExceeded(`past the quota by ${b.base + b.inflight.bytes - b.quota} bytes`));
    }
    cb(null, chunk);
  }
  /** Takes this upload's bytes out of the in-flight total (they are on disk now, or were removed). */
  settle(): void {
    if (this.budget) this.budget.inflight.bytes -= this.bytes;
    this.budget = undefined;
  }
}

const typeName = (s: FtpSession): string => (s.type === 'A' ? 'ASCII' : 'BINARY');

function traceDataClose(s: FtpSession, conn: DataConnection, verb: string, bytes: number, how: string): void {
  s.tracer.emit('ftp-data', conn.cid, '*', 'close', () => ({
    summary: `${verb} ${how}: ${bytes} B on the wire, TYPE ${s.type}, ${conn.mode}: ${conn.route}`,
    bytes,
    meta: { verb, how, bytes, type: s.type, mode: conn.mode, route: conn.route },
  }));
}

async function openData(s: FtpSession): Promise<DataConnection | undefined> {
  try {
    return await s.data.open();
  } catch (err) {
    s.trace('*', 'error', `data connection failed: ${(err as Error).message}`);
    await s.reply(425, "Can't open data connection.");
    return undefined;
  }
}

/** Sends `source` over a data connection: 150, the bytes (LF as CRLF in TYPE A when `convert`), then 226 or 426. */
function sendOut(s: FtpSession, verb: string, label: string, source: () => Readable, convert: boolean): void {
  s.startTransfer(async () => {
    await s.reply(150, `Opening ${typeName(s)} mode data connection for ${label}.`);
    const conn = await openData(s);
    if (!conn) return;
    const counter = new Counter();
    try {
      await pipeline([source(), ...(convert ? [new LfToCrlf()] : []), counter, conn.socket]);
      traceDataClose(s, conn, verb, counter.bytes, 'complete');
      await s.reply(226, `Transfer complete, ${counter.bytes} bytes sent.`);
    } catch {
      conn.socket.destroy();
      traceDataClose(s, conn, verb, counter.bytes, s.aborting ? 'aborted (ABOR)' : 'cut off');
      await s.reply(426, 'Connection closed; transfer aborted.');
    } finally {
      s.data.current = undefined;
    }
  });
}

interface Receive {
  append: boolean;
  offset: number;
  /** The 150 text (STOU names the file there). */
  opening: string;
}

/**
 * Receives a file. The bytes already there and kept (APPE, REST) count against the quota with everything else under
 * the root; past the quota the data connection is cut, the file is put back to its size before, and 552 is sent. A
 * client that drops the connection mid-file leaves the partial file, so SIZE then REST + STOR can resume it.
 */
function receive(s: FtpSession, verb: string, target: Resolved, r: Receive): void {
  s.startTransfer(async () => {
    // Refused before any data moved: the pending PASV / PORT is dropped with it.
    const refuse = async (code: number, text: string): Promise<void> => {
      s.data.reset();
      await s.reply(code, text);
    };
    const before = await stat(target.real).catch(() => undefined);
    if (before?.isDirectory()) return refuse(550, 'Is a directory.');
    // A FIFO or a device would block or write somewhere else: only plain files are written to.
    if (before && !before.isFile()) return refuse(550, 'Not a plain file.');
    const sizeBefore = before?.size ?? -1;
    if (r.offset > Math.max(sizeBefore, 0)) return refuse(554, 'REST offset is past the end of the file.');
    const quota = s.user!.quotaBytes ?? s.o.quotaBytes;
    const kept = r.append ? Math.max(sizeBefore, 0) : r.offset;
    const inflight = s.ctx.inFlight.get(s.jail!.root);
    // On disk now, minus what other uploads have in flight (they count live), minus the bytes this upload replaces.
    const base = (await usedBytes(s.jail!.root)) - inflight.bytes - (Math.max(sizeBefore, 0) - kept);
    if (base + inflight.bytes >= quota) return refuse(552, `Exceeded storage allocation (quota ${quota} bytes).`);
    await s.reply(150, r.opening);
    const conn = await openData(s);
    if (!conn) return;
    if (r.offset > 0 && !r.append) await truncate(target.real, r.offset);
    const out = createWriteStream(target.real, r.append ? { flags: 'a' } : { flags: r.offset > 0 ? 'r+' : 'w', start: r.offset });
    const counter = new Counter({ inflight, base, quota });
    try {
      await pipeline([conn.socket, ...(s.type === 'A' ? [new CrlfToLf()] : []), counter, out]);
      traceDataClose(s, conn, verb, counter.bytes, 'complete');
      await s.reply(226, `Transfer complete, ${counter.bytes} bytes received.`);
    } catch (err) {
      conn.socket.destroy();
      out.destroy();
      // A write already handed to the file system still lands: wait for it before the file is sized or truncated.
      if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
      if (err instanceof QuotaExceeded) {
        if (sizeBefore < 0) await rm(target.real, { force: true });
        else await truncate(target.real, kept);
        traceDataClose(s, conn, verb, counter.bytes, `cut at the quota (${quota} B), file put back`);
        return void (await s.reply(552, `Exceeded storage allocation (quota ${quota} bytes); upload discarded.`));
      }
      const size = await stat(target.real).then((st) => st.size, () => 0);
      traceDataClose(s, conn, verb, counter.bytes, `cut off, partial file of ${size} B kept`);
      await s.reply(426, `Connection closed; transfer aborted. ${size} bytes kept: REST ${size} then STOR to resume.`);
    } finally {
      counter.settle();
      s.data.current = undefined;
    }
  });
}

/** The argument of LIST / NLST without the `-la`-style options some clients add. */
function listArg(arg: string): string {
  return arg.replace(/^(?:-[a-zA-Z]+\s*)+/, '').trim();
}

async function listing(s: FtpSession, verb: 'LIST' | 'NLST' | 'MLSD', arg: string): Promise<void> {
  const r = await resolveOr550(s, listArg(arg) || '.');
  if (!r) return;
  const st = await fsOr550(s, () => stat(r.real));
  if (!st) return;
  let lines: string[];
  let note = '';
  if (st.isDirectory()) {
    const { entries, truncated } = await readEntries(s.jail!, r.virtual, r.real, s.o.maxListEntries);
    if (truncated) note = ` (cut at maxListEntries=${s.o.maxListEntries})`;
    lines = entries.map((e) =>
      verb === 'LIST' ? lsLine(e) : verb === 'NLST' ? e.name : `${mlsxFacts(e, s.readOnly)} ${e.name}`,
    );
  } else if (verb === 'MLSD') {
    return void s.reply(501, 'MLSD needs a directory (use MLST for a file).');
  } else {
    const name = r.virtual.split('/').pop()!;
    lines = [verb === 'LIST' ? lsLine({ name, st, blockedLink: false }) : name];
  }
  const body = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
  sendOut(s, verb, `${verb} of ${r.virtual}${note}`, () => Readable.from([body]), false);
}

async function store(s: FtpSession, verb: 'STOR' | 'APPE', arg: string): Promise<void> {
  const offset = s.restOffset;
  s.restOffset = 0;
  const r = await resolveOr550(s, arg);
  if (!r) return s.data.reset();
  receive(s, verb, r, { append: verb === 'APPE', offset, opening: `Opening ${typeName(s)} mode data connection for ${r.virtual}.` });
}

export const transferCommands: CommandTable = {
  RETR: {
    help: 'RETR <path>',
    needsArg: true,
    data: true,
    async run(s, arg) {
      const offset = s.restOffset;
      s.restOffset = 0;
      const r = await resolveOr550(s, arg);
      if (!r) return s.data.reset();
      const st = await fsOr550(s, () => stat(r.real));
      if (!st) return s.data.reset();
      if (!st.isFile()) return void s.reply(550, 'Not a plain file.');
      if (offset > st.size) return void s.reply(554, 'REST offset is past the end of the file.');
      const label = `${r.virtual} (${st.size - offset} bytes${offset ? ` from offset ${offset}` : ''})`;
      sendOut(s, 'RETR', label, () => createReadStream(r.real, { start: offset }), s.type === 'A');
    },
  },
  STOR: { help: 'STOR <path>', needsArg: true, writes: true, data: true, run: (s, arg) => store(s, 'STOR', arg) },
  APPE: { help: 'APPE <path>', needsArg: true, writes: true, data: true, run: (s, arg) => store(s, 'APPE', arg) },
  STOU: {
    help: 'STOU',
    writes: true,
    data: true,
    async run(s) {
      s.restOffset = 0;
      const name = `stou-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      const r = await resolveOr550(s, name);
      if (!r) return;
      receive(s, 'STOU', r, { append: false, offset: 0, opening: `FILE: ${name}` });
    },
  },
  LIST: { help: 'LIST [path]', data: true, run: (s, arg) => listing(s, 'LIST', arg) },
  NLST: { help: 'NLST [path]', data: true, run: (s, arg) => listing(s, 'NLST', arg) },
  MLSD: { help: 'MLSD [path]', data: true, run: (s, arg) => listing(s, 'MLSD', arg) },
  MLST: {
    help: 'MLST [path]',
    async run(s, arg) {
      const r = await resolveOr550(s, arg.trim() || '.');
      if (!r) return;
      const st = await fsOr550(s, () => stat(r.real));
      if (!st) return;
      const type = r.virtual === s.cwd ? 'cdir' : undefined;
      void s.reply(250, [`Listing ${r.virtual}`, `${mlsxFacts({ st, blockedLink: false }, s.readOnly, type)} ${r.virtual}`, 'End']);
    },
  },
};
