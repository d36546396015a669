import { SELECTED, type CommandHandler } from './base.ts';
import { expungeDeleted } from './expunge.ts';

/** CLOSE: silently expunge (unless read-only) and leave the mailbox. */
export const close: CommandHandler = {
  states: SELECTED,
  async run(ctx) {
    if (!ctx.session.selected!.readOnly) await expungeDeleted(ctx, null, true);
    ctx.session.unselect();
    ctx.session.tagged(ctx.cmd.tag, 'OK', 'CLOSE completed');
  },
};

/** UNSELECT (RFC 3691): leave the mailbox without expunging. */
export const unselect: CommandHandler = {
  states: SELECTED,
  run(ctx) {
    ctx.session.unselect();
    ctx.session.tagged(ctx.cmd.tag, 'OK', 'UNSELECT completed');
  },
};
