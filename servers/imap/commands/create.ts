import { AUTHED, arity, mailboxArg, type CommandHandler } from './base.ts';

/** CREATE, making missing parents too (RFC 3501 6.3.3: `a/b/c` creates `a` and `a/b`). */
export const create: CommandHandler = {
  states: AUTHED,
  async run(ctx) {
    if (!arity(ctx, 1)) return;
    const { session, cmd } = ctx;
    const decoded = mailboxArg(ctx, cmd.args[0], 'CREATE mailbox');
    if (decoded === null) return;
    const name = decoded.replace(/\/+$/, '');
    if (!name || name.split('/').some((p) => p === '')) return session.tagged(cmd.tag, 'BAD', 'CREATE mailbox');
    const store = session.o.store;
    if (store.mailbox(session.user!, name)) return session.tagged(cmd.tag, 'NO', '[ALREADYEXISTS] Mailbox exists');
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!store.mailbox(session.user!, parent)) await store.createMailbox(session.user!, parent);
    }
    await store.createMailbox(session.user!, name);
    session.tagged(cmd.tag, 'OK', 'CREATE completed');
  },
};
