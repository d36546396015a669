import { MailStore } from '../../mail/store/index.ts';
import { astring } from '../parser.ts';
import { AUTHED, arity, type CommandHandler } from './base.ts';

/** RENAME, children included (`a` → `b` also moves `a/x` to `b/x`). */
export const rename: CommandHandler = {
  states: AUTHED,
  async run(ctx) {
    if (!arity(ctx, 2)) return;
    const { session, cmd } = ctx;
    const from = astring(cmd.args[0]);
    const to = astring(cmd.args[1])?.replace(/\/+$/, '');
    if (!from || !to) return session.tagged(cmd.tag, 'BAD', 'RENAME from to');
    const store = session.o.store;
    const user = session.user!;
    if (MailStore.canonical(from) === 'INBOX') return session.tagged(cmd.tag, 'NO', '[CANNOT] Renaming INBOX is not supported here');
    const src = store.mailbox(user, from);
    if (!src) return session.tagged(cmd.tag, 'NO', '[NONEXISTENT] No such mailbox');
    if (store.mailbox(user, to)) return session.tagged(cmd.tag, 'NO', '[ALREADYEXISTS] Target exists');
    const children = store.listMailboxes(user).filter((n) => n.startsWith(`${src.name}/`));
    if (session.selected && (session.selected.name === src.name || children.includes(session.selected.name))) session.unselect();
    await store.renameMailbox(user, src.name, to);
    for (const child of children) await store.renameMailbox(user, child, to + child.slice(src.name.length));
    session.tagged(cmd.tag, 'OK', 'RENAME completed');
  },
};
