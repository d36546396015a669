import { quote } from './parser.ts';

/**
 * Just enough MIME (RFC 2045/2046) for ENVELOPE, BODYSTRUCTURE and BODY[section]: everything works on binary strings
 * (latin1, one char per byte) so that sizes and partial fetches count octets.
 */
export interface MimePart {
  /** The header block including its final blank line. */
  header: string;
  body: string;
  headers: Array<[string, string]>;
  type: string;
  subtype: string;
  params: Array<[string, string]>;
  children: MimePart[];
  /** For message/rfc822: the encapsulated message. */
  message?: MimePart;
}

export function splitHeader(text: string): { header: string; body: string } {
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) return { header: text, body: '' };
  // A message starting with a blank line has an empty header.
  if (/^\r?\n/.test(text)) {
    const nl = text.startsWith('\r\n') ? 2 : 1;
    return { header: text.slice(0, nl), body: text.slice(nl) };
  }
  const end = m.index + m[0].length;
  return { header: text.slice(0, end), body: text.slice(end) };
}

export function parseHeaders(header: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of header.replace(/\r?\n[ \t]/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out.push([line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()]);
  }
  return out;
}

export function headerValue(part: MimePart, name: string): string | null {
  return part.headers.find(([k]) => k === name)?.[1] ?? null;
}

/** `text/plain; charset="utf-8"` → type, subtype and parameters (names upper-cased as IMAP servers usually show). */
export function parseParams(value: string): { value: string; params: Array<[string, string]> } {
  const [first = '', ...rest] = splitOutsideQuotes(value, ';');
  const params: Array<[string, string]> = [];
  for (const p of rest) {
    const i = p.indexOf('=');
    if (i <= 0) continue;
    let v = p.slice(i + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params.push([p.slice(0, i).trim().toUpperCase(), v]);
  }
  return { value: first.trim(), params };
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQ = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"' && s[i - 1] !== '\\') inQ = !inQ;
    if (c === sep && !inQ) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

export function parseMime(text: string, depth = 0, defaultType = 'text/plain'): MimePart {
  const { header, body } = splitHeader(text);
  const headers = parseHeaders(header);
  const ct = parseParams(headers.find(([k]) => k === 'content-type')?.[1] ?? defaultType);
  let [type = 'text', subtype = 'plain'] = ct.value.toLowerCase().split('/');
  if (!subtype) [type, subtype] = ['text', 'plain'];
  const part: MimePart = { header, body, headers, type, subtype, params: ct.params, children: [] };
  if (depth > 20) return part;
  const boundary = ct.params.find(([k]) => k === 'BOUNDARY')?.[1];
  if (type === 'multipart' && boundary) {
    const childDefault = subtype === 'digest' ? 'message/rfc822' : 'text/plain';
    part.children = splitMultipart(body, boundary).map((p) => parseMime(p, depth + 1, childDefault));
  } else if (type === 'message' && subtype === 'rfc822') {
    part.message = parseMime(body, depth + 1);
  }
  return part;
}

function splitMultipart(body: string, boundary: string): string[] {
  const delim = `--${boundary}`;
  const parts: string[] = [];
  const lines = body.split(/(?<=\n)/);
  let cur: string[] | null = null;
  for (const line of lines) {
    const bare = line.replace(/\r?\n$/, '').trimEnd();
    if (bare === delim || bare === `${delim}--`) {
      if (cur) parts.push(stripLastNewline(cur.join('')));
      if (bare.endsWith('--')) return parts;
      cur = [];
    } else if (cur) cur.push(line);
  }
  if (cur) parts.push(stripLastNewline(cur.join('')));
  return parts;
}

/** The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1). */
function stripLastNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}

// ---- ENVELOPE ----

interface Address {
  name: string | null;
  mailbox: string;
  host: string;
}

export function parseAddresses(value: string | null): Address[] {
  if (!value) return [];
  const out: Address[] = [];
  for (const raw of splitOutsideQuotes(value.replace(/[^:;]*:([^;]*);/g, '$1'), ',')) {
    const s = raw.trim();
    if (!s) continue;
    const angle = /^(.*)<([^>]*)>\s*$/.exec(s);
    let name: string | null = null;
    let addr = s;
    if (angle) {
      name = angle[1]!.trim().replace(/^"(.*)"$/, '$1').replace(/\\(.)/g, '$1') || null;
      addr = angle[2]!.trim();
    } else {
      const comment = /^([^\s(]+)\s*\((.*)\)$/.exec(s);
      if (comment) [addr, name] = [comment[1]!, comment[2]!];
    }
    const at = addr.lastIndexOf('@');
    out.push(at > 0 ? { name, mailbox: addr.slice(0, at), host: addr.slice(at + 1) } : { name, mailbox: addr, host: '' });
  }
  return out;
}

function addressList(list: Address[]): string {
  if (list.length === 0) return 'NIL';
  return `(${list.map((a) => `(${quote(a.name)} NIL ${quote(a.mailbox)} ${quote(a.host || null)})`).join('')})`;
}

/** RFC 3501 ENVELOPE: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id. */
export function envelope(part: MimePart): string {
  const h = (n: string): string | null => headerValue(part, n);
  const from = parseAddresses(h('from'));
  const sender = h('sender') ? parseAddresses(h('sender')) : from;
  const replyTo = h('reply-to') ? parseAddresses(h('reply-to')) : from;
  return `(${[
    quote(h('date')),
    quote(h('subject')),
    addressList(from),
    addressList(sender),
    addressList(replyTo),
    addressList(parseAddresses(h('to'))),
    addressList(parseAddresses(h('cc'))),
    addressList(parseAddresses(h('bcc'))),
    quote(h('in-reply-to')),
    quote(h('message-id')),
  ].join(' ')})`;
}

// ---- BODYSTRUCTURE ----

function paramList(params: Array<[string, string]>): string {
  return params.length === 0 ? 'NIL' : `(${params.map(([k, v]) => `${quote(k)} ${quote(v)}`).join(' ')})`;
}

function lineCount(s: string): number {
  return (s.match(/\n/g) ?? []).length + (s.length > 0 && !s.endsWith('\n') ? 1 : 0);
}

function disposition(part: MimePart): string {
  const d = headerValue(part, 'content-disposition');
  if (!d) return 'NIL';
  const p = parseParams(d);
  return `(${quote(p.value.toUpperCase())} ${paramList(p.params)})`;
}

/** BODYSTRUCTURE when `extended`, else the non-extensible BODY form. */
export function bodyStructure(part: MimePart, extended: boolean): string {
  if (part.type === 'multipart') {
    const kids = part.children.length > 0 ? part.children.map((c) => bodyStructure(c, extended)).join('') : bodyStructure(parseMime('\r\n'), extended);
    const ext = extended ? ` ${paramList(part.params)} ${disposition(part)} NIL NIL` : '';
    return `(${kids} ${quote(part.subtype.toUpperCase())}${ext})`;
  }
  const id = headerValue(part, 'content-id');
  const desc = headerValue(part, 'content-description');
  const enc = (headerValue(part, 'content-transfer-encoding') ?? '7BIT').toUpperCase();
  const fields = [quote(part.type.toUpperCase()), quote(part.subtype.toUpperCase()), paramList(part.params), quote(id), quote(desc), quote(enc), String(part.body.length)];
  if (part.type === 'message' && part.subtype === 'rfc822' && part.message) {
    fields.push(envelope(part.message), bodyStructure(part.message, extended), String(lineCount(part.body)));
  } else if (part.type === 'text') {
    fields.push(String(lineCount(part.body)));
  }
  if (extended) fields.push(quote(headerValue(part, 'content-md5')), disposition(part), 'NIL', 'NIL');
  return `(${fields.join(' ')})`;
}

// ---- BODY[section] ----

/** The part a section's numbers point at (`1.2`), or null. A non-multipart message is its own part 1. */
function partAt(root: MimePart, path: number[]): MimePart | null {
  let cur: MimePart = root;
  for (const n of path) {
    if (cur.type === 'message' && cur.message && cur !== root) cur = cur.message;
    if (cur.type === 'multipart') {
      const next = cur.children[n - 1];
      if (!next) return null;
      cur = next;
    } else if (n !== 1) return null;
  }
  return cur;
}

function headerFields(header: string, names: string[], not: boolean): string {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const lines = header.replace(/\r?\n$/, '').split(/(?<=\n)(?![ \t])/);
  const kept = lines.filter((l) => {
    const name = l.slice(0, l.indexOf(':')).trim().toLowerCase();
    if (!l.includes(':')) return false;
    return not ? !wanted.has(name) : wanted.has(name);
  });
  return kept.map((l) => (l.endsWith('\n') ? l : `${l}\r\n`)).join('') + '\r\n';
}

/**
 * The bytes of `BODY[<section>]`: '' (whole message), HEADER, TEXT, HEADER.FIELDS (..), HEADER.FIELDS.NOT (..), MIME,
 * and part numbers before any of them. Null when the section does not exist in this message.
 */
export function sectionText(raw: string, section: string, root = parseMime(raw)): string | null {
  if (section === '') return raw;
  const m = /^((?:\d+\.)*\d+)?\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?\s*(?:\((.*)\))?$/i.exec(section.trim());
  if (!m) return null;
  const path = m[1] ? m[1].split('.').map(Number) : [];
  const spec = (m[2] ?? '').toUpperCase();
  let part = path.length === 0 ? root : partAt(root, path);
  if (!part) return null;
  if (spec === 'MIME') return path.length === 0 ? null : part.header;
  if (spec === '') return path.length === 0 ? raw : part.body;
  // HEADER and TEXT of a part refer to the message inside a message/rfc822 part.
  if (path.length > 0) {
    if (part.type !== 'message' || !part.message) return null;
    part = part.message;
  }
  if (spec === 'TEXT') return part.body;
  if (spec === 'HEADER') return part.header;
  const names = (m[3] ?? '').split(/\s+/).map((n) => n.replace(/^"|"$/g, '')).filter(Boolean);
  return headerFields(part.header, names, spec === 'HEADER.FIELDS.NOT');
}
