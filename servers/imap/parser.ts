import { ErrorCodes, WirelabError } from '../../core/errors.ts';

/** A parsed argument: an atom (NIL, numbers, flags, sequence sets, fetch items with their [section]<partial>), a
 * string (quoted or literal, as bytes) or a parenthesized list. */
export type ImapToken =
  | { type: 'atom'; value: string }
  | { type: 'string'; value: Buffer }
  | { type: 'list'; items: ImapToken[] };

export interface ImapCommand {
  tag: string;
  /** Upper-cased; `UID FETCH` etc. keep UID as the command and the verb as the first argument. */
  name: string;
  args: ImapToken[];
}

export class ImapParseError extends WirelabError {
  constructor(message: string, readonly tag: string | null) {
    super(ErrorCodes.MAIL_PROTOCOL, message);
  }
}

const ATOM_SPECIALS = new Set([...'(){ %*"\\]'].map((c) => c.charCodeAt(0)));

function isAtomChar(b: number): boolean {
  return b > 0x20 && b < 0x7f && !ATOM_SPECIALS.has(b);
}

/**
 * Parses one whole command as the reader assembled it (literals inline after their `{n}\r\n`).
 * `maxDepth` bounds parenthesis and bracket nesting.
 */
export function parseCommand(data: Buffer, maxDepth: number): ImapCommand {
  let pos = 0;
  let end = data.length;
  if (end >= 1 && data[end - 1] === 0x0a) end--;
  if (end >= 1 && data[end - 1] === 0x0d) end--;
  let tag: string | null = null;
  const fail = (msg: string): never => {
    throw new ImapParseError(msg, tag);
  };

  const word = (): string => {
    const start = pos;
    while (pos < end && isAtomChar(data[pos]!) && data[pos] !== 0x2b /* + not in tags */) pos++;
    return data.toString('latin1', start, pos);
  };

  tag = word() || null;
  if (!tag) fail('missing tag');
  if (data[pos] !== 0x20) fail('expected a space after the tag');
  pos++;
  const name = word().toUpperCase();
  if (!name) fail('missing command');

  const parseAtom = (depth: number): ImapToken => {
    const start = pos;
    while (pos < end) {
      const b = data[pos]!;
      if (b === 0x5b /* [ */) {
        // A fetch item's section: everything up to the matching ] belongs to the atom (it may hold spaces and lists).
        let d = 0;
        for (; pos < end; pos++) {
          if (data[pos] === 0x5b) {
            d++;
            if (depth + d > maxDepth) fail(`nesting deeper than ${maxDepth}`);
          } else if (data[pos] === 0x5d && --d === 0) break;
        }
        if (pos >= end) fail('unterminated [');
        pos++;
        continue;
      }
      // A flag is an atom after a backslash (\Seen, and \* in PERMANENTFLAGS).
      if (b === 0x2a /* * */ || b === 0x25 /* % */ || isAtomChar(b) || (b === 0x5c && pos === start)) {
        pos++;
        continue;
      }
      break;
    }
    if (pos === start) fail(`unexpected character ${JSON.stringify(String.fromCharCode(data[pos] ?? 0))}`);
    return { type: 'atom', value: data.toString('latin1', start, pos) };
  };

  const parseQuoted = (): ImapToken => {
    pos++;
    const bytes: number[] = [];
    while (pos < end && data[pos] !== 0x22) {
      let b = data[pos]!;
      if (b === 0x5c) {
        pos++;
        b = data[pos] ?? fail('unterminated quoted string');
        if (b !== 0x5c && b !== 0x22) fail('only \\\\ and \\" may be escaped in a quoted string');
      }
      if (b === 0x0d || b === 0x0a) fail('CR or LF in a quoted string');
      bytes.push(b);
      pos++;
    }
    if (pos >= end) fail('unterminated quoted string');
    pos++;
    return { type: 'string', value: Buffer.from(bytes) };
  };

  const parseLiteral = (): ImapToken => {
    const m = /^~?\{(\d+)\+?\}\r?\n/.exec(data.toString('latin1', pos, Math.min(end + 2, pos + 32)));
    if (!m) fail('malformed literal');
    const size = Number(m![1]);
    const start = pos + m![0].length;
    if (start + size > data.length) fail('literal shorter than announced');
    pos = start + size;
    return { type: 'string', value: data.subarray(start, start + size) };
  };

  const parseValue = (depth: number): ImapToken => {
    const b = data[pos];
    if (b === 0x22) return parseQuoted();
    if (b === 0x7b || (b === 0x7e && data[pos + 1] === 0x7b)) return parseLiteral();
    if (b === 0x28) {
      if (depth + 1 > maxDepth) fail(`nesting deeper than ${maxDepth}`);
      pos++;
      const items: ImapToken[] = [];
      while (pos < end && data[pos] !== 0x29) {
        items.push(parseValue(depth + 1));
        if (data[pos] === 0x20) pos++;
        else if (data[pos] !== 0x29) fail('expected a space or ) in a list');
      }
      if (pos >= end) fail('unterminated list');
      pos++;
      return { type: 'list', items };
    }
    return parseAtom(depth);
  };

  const args: ImapToken[] = [];
  if (pos < end) {
    if (data[pos] !== 0x20) fail('expected a space after the command');
    pos++;
    while (pos < end) {
      args.push(parseValue(0));
      if (pos < end) {
        if (data[pos] !== 0x20) fail('expected a space between arguments');
        pos++;
        if (pos >= end) fail('trailing space');
      }
    }
  }
  return { tag: tag!, name, args };
}

/** The text of an atom or string argument (astring); null for a list or a missing argument. */
export function astring(t: ImapToken | undefined): string | null {
  if (!t) return null;
  if (t.type === 'atom') return t.value;
  if (t.type === 'string') return t.value.toString('utf8');
  return null;
}

/**
 * A string for a response: quoted when it can be, a literal otherwise; NIL for null. Responses are built as binary
 * strings (one char per byte, latin1), so a string here is bytes already.
 */
export function quote(s: string | Buffer | null | undefined): string {
  if (s === null || s === undefined) return 'NIL';
  const text = typeof s === 'string' ? s : s.toString('latin1');
  if (/[\r\n]/.test(text) || text.includes('\0') || text.length > 1000 || /[^\x20-\x7e]/.test(text)) return `{${text.length}}\r\n${text}`;
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
