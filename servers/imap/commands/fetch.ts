import type { StoredMessage } from '../../mail/store/index.ts';
import { formatInternalDate } from '../dates.ts';
import { bodyStructure, envelope, parseMime, sectionText, type MimePart } from '../mime.ts';
import type { ImapToken } from '../parser.ts';
import { SELECTED, type CommandContext, type CommandHandler } from './base.ts';

const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};
const SIMPLE = new Set(['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT']);
const SECTION = /^(BODY\.PEEK|BODY)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?$/i;

type Item =
  | { kind: 'simple'; name: string }
  | { kind: 'section'; peek: boolean; section: string; start?: number; length?: number };

function parseItems(token: ImapToken | undefined): Item[] | null {
  if (!token) return null;
  const atoms = token.type === 'list' ? token.items : [token];
  const out: Item[] = [];
  for (const a of atoms) {
    if (a.type !== 'atom') return null;
    const upper = a.value.toUpperCase();
    if (token.type === 'atom' && MACROS[upper]) return MACROS[upper]!.map((name) => ({ kind: 'simple', name }));
    if (SIMPLE.has(upper)) {
      out.push({ kind: 'simple', name: upper });
      continue;
    }
    const m = SECTION.exec(a.value);
    if (!m) return null;
    out.push({
      kind: 'section',
      peek: m[1]!.toUpperCase() === 'BODY.PEEK',
      section: m[2]!.toUpperCase(),
      ...(m[3] !== undefined ? { start: Number(m[3]), length: Number(m[4]) } : {}),
    });
  }
  return out;
}

const parsed = new WeakMap<StoredMessage, MimePart>();
function mimeOf(m: StoredMessage): MimePart {
  let p = parsed.get(m);
  if (!p) {
    p = parseMime(m.raw.toString('latin1'));
    parsed.set(m, p);
  }
  return p;
}

function literal(s: string): string {
  return `{${s.length}}\r\n${s}`;
}

function itemValue(item: Item, m: StoredMessage): string {
  if (item.kind === 'section') {
    let text = sectionText(m.raw.toString('latin1'), item.section, mimeOf(m)) ?? '';
    let suffix = '';
    if (item.start !== undefined) {
      text = text.slice(item.start, item.start + item.length!);
      suffix = `<${item.start}>`;
    }
    return `BODY[${item.section}]${suffix} ${literal(text)}`;
  }
  switch (item.name) {
    case 'FLAGS':
      return `FLAGS (${[...m.flags].join(' ')})`;
    case 'UID':
      return `UID ${m.uid}`;
    case 'INTERNALDATE':
      return `INTERNALDATE "${formatInternalDate(m.internalDate)}"`;
    case 'RFC822.SIZE':
      return `RFC822.SIZE ${m.size}`;
    case 'ENVELOPE':
      return `ENVELOPE ${envelope(mimeOf(m))}`;
    case 'BODYSTRUCTURE':
      return `BODYSTRUCTURE ${bodyStructure(mimeOf(m), true)}`;
    case 'BODY':
      return `BODY ${bodyStructure(mimeOf(m), false)}`;
    case 'RFC822':
      return `RFC822 ${literal(m.raw.toString('latin1'))}`;
    case 'RFC822.HEADER':
      return `RFC822.HEADER ${literal(mimeOf(m).header)}`;
    default:
      return `RFC822.TEXT ${literal(mimeOf(m).body)}`;
  }
}

/** Whether fetching the item marks the message \Seen (RFC 3501 6.4.5). */
function setsSeen(item: Item): boolean {
  return item.kind === 'section' ? !item.peek : item.name === 'RFC822' || item.name === 'RFC822.TEXT';
}

export async function runFetch(ctx: CommandContext, args: ImapToken[], byUid: boolean): Promise<void> {
  const { session, cmd } = ctx;
  const set = args[0]?.type === 'atom' ? session.resolveSet(args[0].value, byUid) : null;
  const items = parseItems(args[1]);
  const label = byUid ? 'UID FETCH' : 'FETCH';
  if (!set || !items || args.length > 3) return session.tagged(cmd.tag, 'BAD', `${label} sequence-set items: invalid arguments`);
  if (byUid && !items.some((i) => i.kind === 'simple' && i.name === 'UID')) items.unshift({ kind: 'simple', name: 'UID' });
  const marks = !session.selected!.readOnly && items.some(setsSeen);
  for (const [seq, uid] of set) {
    const m = session.message(uid);
    if (!m) continue;
    let list = items;
    if (marks && !m.flags.has('\\Seen')) {
      await session.o.store.setFlags(session.user!, session.selected!.name, [uid], 'add', ['\\Seen'], session);
      if (!items.some((i) => i.kind === 'simple' && i.name === 'FLAGS')) list = [...items, { kind: 'simple', name: 'FLAGS' }];
    }
    session.send(`* ${seq} FETCH (${list.map((i) => itemValue(i, m)).join(' ')})`);
  }
  session.tagged(cmd.tag, 'OK', `${label} completed`, byUid);
}

export const fetch: CommandHandler = {
  states: SELECTED,
  run: (ctx) => runFetch(ctx, ctx.cmd.args, false),
};
