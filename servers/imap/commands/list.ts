import { MailStore } from '../../mail/store/index.ts';
import { encodeMailboxName } from '../mutf7.ts';
import { quote } from '../parser.ts';
import type { ImapSession } from '../session.ts';
import { AUTHED, arity, mailboxArg, type CommandContext, type CommandHandler } from './base.ts';

const SPECIAL_USE: Record<string, string> = { Sent: '\\Sent', Trash: '\\Trash', Drafts: '\\Drafts', Junk: '\\Junk', Archive: '\\Archive' };

/** LIST wildcards (RFC 3501 6.3.8): `*` matches anything, `%` anything but the delimiter. */
export function patternToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/%/g, '[^/]*');
  return new RegExp(`^${body}$`, /^inbox/i.test(pattern) ? 'i' : '');
}

function matches(session: ImapSession, pattern: string): Array<{ name: string; attrs: string[] }> {
  const names = session.o.store.listMailboxes(session.user!);
  const re = patternToRegExp(pattern);
  return names
    .filter((n) => re.test(n) || (MailStore.canonical(pattern) === 'INBOX' && n === 'INBOX'))
    .map((n) => {
      const attrs = [names.some((o) => o.startsWith(`${n}/`)) ? '\\HasChildren' : '\\HasNoChildren'];
      const special = SPECIAL_USE[n];
      if (special) attrs.push(special);
      return { name: n, attrs };
    });
}

function listLike(word: 'LIST' | 'LSUB'): CommandHandler {
  return {
    states: AUTHED,
    run(ctx: CommandContext) {
      const { session, cmd } = ctx;
      // RFC 5258's LIST (selection options) reference pattern: options are accepted and ignored.
      const args = cmd.args[0]?.type === 'list' ? cmd.args.slice(1) : cmd.args;
      if (args.length < 2) return void arity(ctx, 2);
      const ref = mailboxArg(ctx, args[0], `${word} reference mailbox`);
      if (ref === null) return;
      const pattern = mailboxArg(ctx, args[1], `${word} reference mailbox`);
      if (pattern === null) return;
      if (pattern === '') {
        session.send(`* ${word} (\\Noselect) "/" ""`);
      } else {
        for (const m of matches(session, ref + pattern)) session.send(`* ${word} (${m.attrs.join(' ')}) "/" ${quote(encodeMailboxName(m.name))}`);
      }
      session.tagged(cmd.tag, 'OK', `${word} completed`);
    },
  };
}

export const list = listLike('LIST');
/** Every mailbox counts as subscribed. */
export const lsub = listLike('LSUB');
