import { ErrorCodes, WirelabError } from '../../../core/errors.ts';
import type { StoredMessage } from '../../mail/store/index.ts';
import { parseSearchDate } from '../dates.ts';
import { fold, searchable, type SearchableMessage } from '../decode.ts';
import { astring, type ImapToken } from '../parser.ts';
import { parseSequenceSet } from '../sequence.ts';
import type { ImapSession } from '../session.ts';
import { SELECTED, type CommandContext, type CommandHandler } from './base.ts';

type Test = (m: StoredMessage, seq: number) => boolean;

/** Search keys this server cannot compile: answered BAD. */
class SearchSyntax extends WirelabError {
  constructor(message: string) {
    super(ErrorCodes.MAIL_PROTOCOL, message);
  }
}


const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  DRAFT: ['\\Draft', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
  UNDRAFT: ['\\Draft', false],
};

const day = (d: Date): number => Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());

/** Substring match, case-insensitive over Unicode (both sides folded: decode.ts `fold`). */
function contains(haystack: string | null, needle: string): boolean {
  return haystack !== null && fold(haystack).includes(fold(needle));
}

/** Compiles the search keys of RFC 3501 6.4.4 into one test; throws SearchSyntax on anything else. */
function compile(tokens: ImapToken[], session: ImapSession, maxSeq: number, decoded = new WeakMap<StoredMessage, SearchableMessage>()): Test {
  let i = 0;
  const text = (): string => {
    const v = astring(tokens[i++]);
    if (v === null) throw new SearchSyntax('missing argument');
    return v;
  };
  const num = (): number => {
    const v = text();
    if (!/^\d+$/.test(v)) throw new SearchSyntax(`expected a number, got ${v.slice(0, 20)}`);
    return Number(v);
  };
  const date = (): Date => {
    const d = parseSearchDate(text());
    if (!d) throw new SearchSyntax('expected a date like 1-Feb-2026');
    return d;
  };
  // Each message is parsed and decoded (encoded words, transfer encoding, charset) at most once per SEARCH.
  const text_ = (m: StoredMessage): SearchableMessage => {
    let d = decoded.get(m);
    if (!d) decoded.set(m, (d = searchable(m.raw)));
    return d;
  };
  const header = (m: StoredMessage, name: string): string | null => text_(m).header(name);
  const sent = (m: StoredMessage): number | null => {
    const t = Date.parse(header(m, 'date') ?? '');
    return Number.isNaN(t) ? null : day(new Date(t));
  };

  let depth = 0;
  const one = (): Test => {
    // NOT and OR nest without parentheses: bound them as the parser bounds lists.
    if (++depth > session.o.maxSearchDepth) throw new SearchSyntax(`search keys nested deeper than ${session.o.maxSearchDepth}`);
    try {
      return key();
    } finally {
      depth--;
    }
  };
  const key = (): Test => {
    const t = tokens[i++];
    if (!t) throw new SearchSyntax('missing search key');
    if (t.type === 'list') {
      const inner = compile(t.items, session, maxSeq, decoded);
      return inner;
    }
    if (t.type === 'string') throw new SearchSyntax('a string where a search key belongs');
    const key = t.value.toUpperCase();
    const flag = FLAG_KEYS[key];
    if (flag) return (m) => m.flags.has(flag[0]) === flag[1];
    switch (key) {
      case 'ALL':
        return () => true;
      case 'NEW':
      case 'RECENT':
        return () => false;
      case 'OLD':
        return () => true;
      case 'KEYWORD': {
        const k = text();
        return (m) => m.flags.has(k);
      }
      case 'UNKEYWORD': {
        const k = text();
        return (m) => !m.flags.has(k);
      }
      case 'FROM':
      case 'TO':
      case 'CC':
      case 'BCC':
      case 'SUBJECT': {
        const v = text();
        const h = key.toLowerCase();
        return (m) => contains(header(m, h), v);
      }
      case 'HEADER': {
        const h = text().toLowerCase();
        const v = text();
        return (m) => (v === '' ? header(m, h) !== null : contains(header(m, h), v));
      }
      case 'BODY': {
        const v = text();
        return (m) => contains(text_(m).body, v);
      }
      case 'TEXT': {
        const v = text();
        return (m) => contains(text_(m).headerText, v) || contains(text_(m).body, v);
      }
      case 'LARGER': {
        const n = num();
        return (m) => m.size > n;
      }
      case 'SMALLER': {
        const n = num();
        return (m) => m.size < n;
      }
      case 'BEFORE': {
        const d = date().getTime();
        return (m) => day(m.internalDate) < d;
      }
      case 'ON': {
        const d = date().getTime();
        return (m) => day(m.internalDate) === d;
      }
      case 'SINCE': {
        const d = date().getTime();
        return (m) => day(m.internalDate) >= d;
      }
      case 'SENTBEFORE': {
        const d = date().getTime();
        return (m) => (sent(m) ?? Infinity) < d;
      }
      case 'SENTON': {
        const d = date().getTime();
        return (m) => sent(m) === d;
      }
      case 'SENTSINCE': {
        const d = date().getTime();
        return (m) => (sent(m) ?? -Infinity) >= d;
      }
      case 'UID': {
        const view = session.selected!.uids;
        const set = parseSequenceSet(text(), view[view.length - 1] ?? 0);
        if (!set) throw new SearchSyntax('bad UID set');
        return (m) => set.has(m.uid);
      }
      case 'NOT': {
        const inner = one();
        return (m, s) => !inner(m, s);
      }
      case 'OR': {
        const a = one();
        const b = one();
        return (m, s) => a(m, s) || b(m, s);
      }
      default: {
        const set = parseSequenceSet(t.value, maxSeq);
        if (!set) throw new SearchSyntax(`unknown search key ${t.value.slice(0, 20)}`);
        return (_m, s) => set.has(s);
      }
    }
  };

  const all: Test[] = [];
  while (i < tokens.length) all.push(one());
  if (all.length === 0) throw new SearchSyntax('no search keys');
  return (m, s) => all.every((f) => f(m, s));
}

export async function runSearch(ctx: CommandContext, args: ImapToken[], byUid: boolean): Promise<void> {
  const { session, cmd } = ctx;
  let keys = args;
  if (keys[0]?.type === 'atom' && keys[0].value.toUpperCase() === 'CHARSET') {
    const cs = (astring(keys[1]) ?? '').toUpperCase();
    if (cs !== 'US-ASCII' && cs !== 'UTF-8') return session.tagged(cmd.tag, 'NO', '[BADCHARSET (US-ASCII UTF-8)] Unsupported charset');
    keys = keys.slice(2);
  }
  const view = session.selected!.uids;
  let test: Test;
  try {
    test = compile(keys, session, view.length);
  } catch (err) {
    if (err instanceof SearchSyntax) return session.tagged(cmd.tag, 'BAD', `SEARCH: ${err.message}`);
    throw err;
  }
  const hits: number[] = [];
  view.forEach((uid, i) => {
    const m = session.message(uid);
    if (m && test(m, i + 1)) hits.push(byUid ? uid : i + 1);
  });
  session.send(`* SEARCH${hits.map((h) => ` ${h}`).join('')}`);
  session.tagged(cmd.tag, 'OK', `${byUid ? 'UID ' : ''}SEARCH completed`, byUid);
}

export const search: CommandHandler = { states: SELECTED, run: (ctx) => runSearch(ctx, ctx.cmd.args, false) };
