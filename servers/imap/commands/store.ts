import type { FlagMode } from '../../mail/store/index.ts';
import type { ImapToken } from '../parser.ts';
import { SELECTED, type CommandContext, type CommandHandler } from './base.ts';

/** STORE set FLAGS|+FLAGS|-FLAGS[.SILENT] (flags): answered with the new FLAGS unless .SILENT. */
export async function runStore(ctx: CommandContext, args: ImapToken[], byUid: boolean): Promise<void> {
  const { session, cmd } = ctx;
  const label = byUid ? 'UID STORE' : 'STORE';
  const set = args[0]?.type === 'atom' ? session.resolveSet(args[0].value, byUid) : null;
  const what = args[1]?.type === 'atom' ? /^([+-]?)FLAGS(\.SILENT)?$/i.exec(args[1].value) : null;
  const flagTokens = args.slice(2).flatMap((t) => (t.type === 'list' ? t.items : [t]));
  if (!set || !what || flagTokens.some((t) => t.type !== 'atom')) return session.tagged(cmd.tag, 'BAD', `${label} set [+-]FLAGS[.SILENT] (flags)`);
  if (session.selected!.readOnly) return session.tagged(cmd.tag, 'NO', '[READ-ONLY] Mailbox is read-only');
  const flags = flagTokens.map((t) => (t as { value: string }).value).filter((f) => f.toLowerCase() !== '\\recent');
  const mode: FlagMode = what[1] === '+' ? 'add' : what[1] === '-' ? 'remove' : 'set';
  await session.o.store.setFlags(session.user!, session.selected!.name, set.map(([, uid]) => uid), mode, flags, session);
  if (!what[2]) {
    for (const [seq, uid] of set) {
      const m = session.message(uid);
      if (m) session.send(`* ${seq} FETCH (${byUid ? `UID ${uid} ` : ''}FLAGS (${[...m.flags].join(' ')}))`);
    }
  }
  session.tagged(cmd.tag, 'OK', `${label} completed`, byUid);
}

export const store: CommandHandler = { states: SELECTED, run: (ctx) => runStore(ctx, ctx.cmd.args, false) };
