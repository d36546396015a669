import { AUTHED, mailboxArg, type CommandContext, type CommandHandler } from './base.ts';

/** Every mailbox is subscribed (LSUB lists them all): SUBSCRIBE and UNSUBSCRIBE only check the name. */
function subscription(ctx: CommandContext): void {
  const { session, cmd } = ctx;
  const name = mailboxArg(ctx, cmd.args[0], `${cmd.name} mailbox`);
  if (name === null) return;
  if (!session.o.store.mailbox(session.user!, name)) return session.tagged(cmd.tag, 'NO', '[NONEXISTENT] No such mailbox');
  session.tagged(cmd.tag, 'OK', `${cmd.name} completed`);
}

export const subscribe: CommandHandler = { states: AUTHED, run: subscription };
export const unsubscribe: CommandHandler = { states: AUTHED, run: subscription };
