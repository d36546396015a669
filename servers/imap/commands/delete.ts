import { MailStore } from '../../mail/store/index.ts';
import { AUTHED, arity, mailboxArg, type CommandHandler } from './base.ts';

export const deleteCmd: CommandHandler = {
  states: AUTHED,
  async run(ctx) {
    if (!arity(ctx, 1)) return;
    const { session, cmd } = ctx;
    const name = mailboxArg(ctx, cmd.args[0], 'DELETE mailbox');
    if (name === null) return;
    if (MailStore.canonical(name) === 'INBOX') return session.tagged(cmd.tag, 'NO', '[CANNOT] INBOX cannot be deleted');
    const mb = session.o.store.mailbox(session.user!, name);
    if (!mb) return session.tagged(cmd.tag, 'NO', '[NONEXISTENT] No such mailbox');
    if (session.selected?.name === mb.name) session.unselect();
    await session.o.store.deleteMailbox(session.user!, mb.name);
    session.tagged(cmd.tag, 'OK', 'DELETE completed');
  },
};
