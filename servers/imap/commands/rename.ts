import { MailStore } from '../../mail/store/index.ts';
import { AUTHED, arity, mailboxArg, type CommandHandler } from './base.ts';

/** RENAME, children included (`a` → `b` also moves `a/x` to `b/x`). */
export const rename: CommandHandler = {
  states: AUTHED,
  async run(ctx) {
    if (!arity(ctx, 2)) return;
    const { session, cmd } = ctx;
    const from = mailboxArg(ctx, cmd.args[0], 'RENAME from to');
    if (from === null) return;
    const toName = mailboxArg(ctx, cmd.args[1], 'RENAME from to');
    if (toName === null) return;
    const to = toName.replace(/\/+$/, '');
    if (!from || !to) return session.tagged(cmd.tag, 'BAD', 'RENAME from to');
    const store = session.o.store;
    const user = session.user!;
    if (MailStore.canonical(from) === 'INBOX') return session.tagged(cmd.tag, 'NO', '[CANNOT] Renaming INBOX is not supported here');
    const src = store.mailbox(user, from);
    if (!src) return session.tagged(cmd.tag, 'NO', '[NONEXISTENT] No such mailbox');
    if (store.mailbox(user, to)) return session.tagged(cmd.tag, 'NO', '[ALREADYEXISTS] Target exists');
    // The store renames `src` in place: keep the old name for the children.
    const fromName = src.name;
    const children = store.listMailboxes(user).filter((n) => n.startsWith(`${fromName}/`));
    if (session.selected && (session.selected.name === fromName || children.includes(session.selected.name))) session.unselect();
    await store.renameMailbox(user, fromName, to);
    for (const child of children) await store.renameMailbox(user, child, to + child.slice(fromName.length));
    session.tagged(cmd.tag, 'OK', 'RENAME completed');
  },
};
