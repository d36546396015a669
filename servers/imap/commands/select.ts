import { SYSTEM_FLAGS } from '../../mail/store/index.ts';
import { AUTHED, mailboxArg, type CommandContext, type CommandHandler } from './base.ts';

function selectLike(readOnly: boolean): CommandHandler {
  return {
    states: AUTHED,
    run(ctx: CommandContext) {
      const { session, cmd } = ctx;
      const name = mailboxArg(ctx, cmd.args[0], `${cmd.name} mailbox`);
      if (name === null) return;
      // Selecting another mailbox (or failing to) leaves the current one first (RFC 3501 6.3.1).
      session.unselect();
      const mb = session.o.store.mailbox(session.user!, name);
      if (!mb) return session.tagged(cmd.tag, 'NO', '[NONEXISTENT] No such mailbox');
      session.select(mb, readOnly);
      const keywords = new Set<string>();
      for (const m of mb.messages) for (const f of m.flags) if (!f.startsWith('\\')) keywords.add(f);
      const flags = [...SYSTEM_FLAGS, ...keywords].join(' ');
      session.send(`* FLAGS (${flags})`);
      session.send(`* OK [PERMANENTFLAGS ${readOnly ? '()' : `(${flags} \\*)`}] Flags permitted`);
      session.send(`* ${mb.messages.length} EXISTS`);
      session.send('* 0 RECENT');
      const firstUnseen = mb.messages.findIndex((m) => !m.flags.has('\\Seen'));
      if (firstUnseen !== -1) session.send(`* OK [UNSEEN ${firstUnseen + 1}] First unseen`);
      session.send(`* OK [UIDVALIDITY ${mb.uidValidity}] UIDs valid`);
      session.send(`* OK [UIDNEXT ${mb.uidNext}] Predicted next UID`);
      session.tagged(cmd.tag, 'OK', `[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${cmd.name} completed`);
    },
  };
}

export const select = selectLike(false);
export const examine = selectLike(true);
