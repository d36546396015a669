import { parseInternalDate } from '../dates.ts';
import { AUTHED, mailboxArg, type CommandHandler } from './base.ts';

/** APPEND mailbox [(flags)] [date-time] literal (RFC 3501 6.3.11), answering APPENDUID (UIDPLUS, RFC 4315). */
export const append: CommandHandler = {
  states: AUTHED,
  async run(ctx) {
    const { session, cmd } = ctx;
    const args = [...cmd.args];
    const name = mailboxArg(ctx, args.shift(), 'APPEND mailbox [(flags)] [date] {literal}');
    if (name === null) return;
    const message = args.pop();
    if (message?.type !== 'string') return session.tagged(cmd.tag, 'BAD', 'APPEND mailbox [(flags)] [date] {literal}');
    let flags: string[] = [];
    let date: Date | undefined;
    for (const a of args) {
      if (a.type === 'list') flags = a.items.map((f) => (f.type === 'atom' ? f.value : ''));
      else if (a.type === 'string') {
        const d = parseInternalDate(a.value.toString('latin1'));
        if (!d) return session.tagged(cmd.tag, 'BAD', 'Invalid date-time');
        date = d;
      } else return session.tagged(cmd.tag, 'BAD', 'Unexpected APPEND argument');
    }
    if (flags.some((f) => f === '' || f.toLowerCase() === '\\recent')) return session.tagged(cmd.tag, 'BAD', 'Invalid flag');
    const mb = session.o.store.mailbox(session.user!, name);
    if (!mb) return session.tagged(cmd.tag, 'NO', '[TRYCREATE] No such mailbox');
    const uid = await session.o.store.append(session.user!, mb.name, Buffer.from(message.value), { flags, ...(date ? { internalDate: date } : {}), origin: session });
    session.tagged(cmd.tag, 'OK', `[APPENDUID ${mb.uidValidity} ${uid}] APPEND completed`);
  },
};
