import type { ImapToken } from '../parser.ts';
import { SELECTED, type CommandContext, type CommandHandler } from './base.ts';

/** EXPUNGE removes every \Deleted message; UID EXPUNGE (UIDPLUS) only those in the set. */
export async function runExpunge(ctx: CommandContext, args: ImapToken[], byUid: boolean): Promise<void> {
  const { session, cmd } = ctx;
  let limit: Set<number> | null = null;
  if (byUid) {
    const set = args[0]?.type === 'atom' ? session.resolveSet(args[0].value, true) : null;
    if (!set) return session.tagged(cmd.tag, 'BAD', 'UID EXPUNGE set');
    limit = new Set(set.map(([, uid]) => uid));
  } else if (args.length > 0) return session.tagged(cmd.tag, 'BAD', 'EXPUNGE takes no arguments');
  if (session.selected!.readOnly) return session.tagged(cmd.tag, 'NO', '[READ-ONLY] Mailbox is read-only');
  await expungeDeleted(ctx, limit);
  session.tagged(cmd.tag, 'OK', `${byUid ? 'UID ' : ''}EXPUNGE completed`);
}

export async function expungeDeleted(ctx: CommandContext, limit: Set<number> | null, silent = false): Promise<void> {
  const { session } = ctx;
  const doomed = session.selected!.uids.filter((uid) => session.message(uid)?.flags.has('\\Deleted') && (!limit || limit.has(uid)));
  const removed = await session.o.store.remove(session.user!, session.selected!.name, doomed, session);
  if (!silent) session.expunged(removed);
}

export const expunge: CommandHandler = { states: SELECTED, run: (ctx) => runExpunge(ctx, ctx.cmd.args, false) };
