import type { ImapToken } from '../parser.ts';
import { compactSet } from '../sequence.ts';
import { mailboxArg, SELECTED, type CommandContext, type CommandHandler } from './base.ts';

/** COPY and MOVE (RFC 6851), answering COPYUID (UIDPLUS); MOVE then expunges the originals from this view. */
export async function runCopy(ctx: CommandContext, args: ImapToken[], byUid: boolean, move: boolean): Promise<void> {
  const { session, cmd } = ctx;
  const label = `${byUid ? 'UID ' : ''}${move ? 'MOVE' : 'COPY'}`;
  const set = args[0]?.type === 'atom' ? session.resolveSet(args[0].value, byUid) : null;
  if (!set || args.length !== 2) return session.tagged(cmd.tag, 'BAD', `${label} set mailbox`);
  const target = mailboxArg(ctx, args[1], `${label} set mailbox`);
  if (target === null) return;
  const store = session.o.store;
  const dest = store.mailbox(session.user!, target);
  if (!dest) return session.tagged(cmd.tag, 'NO', '[TRYCREATE] No such mailbox');
  if (move && session.selected!.readOnly) return session.tagged(cmd.tag, 'NO', '[READ-ONLY] Mailbox is read-only');
  const pairs = await store.copy(session.user!, session.selected!.name, set.map(([, uid]) => uid), dest.name, session);
  const code = pairs.length > 0 ? `[COPYUID ${dest.uidValidity} ${compactSet(pairs.map((p) => p[0]))} ${compactSet(pairs.map((p) => p[1]))}] ` : '';
  if (move) {
    if (code) session.send(`* OK ${code}Moved`);
    const removed = await store.remove(session.user!, session.selected!.name, pairs.map((p) => p[0]), session);
    session.expunged(removed);
    return session.tagged(cmd.tag, 'OK', `${label} completed`);
  }
  session.tagged(cmd.tag, 'OK', `${code}${label} completed`);
}

export const copy: CommandHandler = { states: SELECTED, run: (ctx) => runCopy(ctx, ctx.cmd.args, false, false) };
export const move: CommandHandler = { states: SELECTED, run: (ctx) => runCopy(ctx, ctx.cmd.args, false, true) };
