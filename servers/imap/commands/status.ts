import { encodeMailboxName } from '../mutf7.ts';
import { quote } from '../parser.ts';
import { AUTHED, arity, mailboxArg, type CommandHandler } from './base.ts';

export const status: CommandHandler = {
  states: AUTHED,
  run(ctx) {
    if (!arity(ctx, 2)) return;
    const { session, cmd } = ctx;
    const name = mailboxArg(ctx, cmd.args[0], 'STATUS mailbox (items)');
    if (name === null) return;
    const items = cmd.args[1];
    if (items?.type !== 'list') return session.tagged(cmd.tag, 'BAD', 'STATUS mailbox (items)');
    const mb = session.o.store.mailbox(session.user!, name);
    if (!mb) return session.tagged(cmd.tag, 'NO', '[NONEXISTENT] No such mailbox');
    const out: string[] = [];
    for (const it of items.items) {
      const item = it.type === 'atom' ? it.value.toUpperCase() : '';
      const value: Record<string, number> = {
        MESSAGES: mb.messages.length,
        RECENT: 0,
        UIDNEXT: mb.uidNext,
        UIDVALIDITY: mb.uidValidity,
        UNSEEN: mb.messages.filter((m) => !m.flags.has('\\Seen')).length,
      };
      if (!(item in value)) return session.tagged(cmd.tag, 'BAD', `Unknown STATUS item ${item.slice(0, 20)}`);
      out.push(`${item} ${value[item]}`);
    }
    session.send(`* STATUS ${quote(encodeMailboxName(mb.name))} (${out.join(' ')})`);
    session.tagged(cmd.tag, 'OK', 'STATUS completed');
  },
};
