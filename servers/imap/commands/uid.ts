import { runCopy } from './copy.ts';
import { runExpunge } from './expunge.ts';
import { runFetch } from './fetch.ts';
import { runSearch } from './search.ts';
import { runStore } from './store.ts';
import { atomOf, SELECTED, type CommandHandler } from './base.ts';

/** UID FETCH / STORE / COPY / MOVE / SEARCH / EXPUNGE: the same commands with UIDs instead of sequence numbers. */
export const uid: CommandHandler = {
  states: SELECTED,
  async run(ctx) {
    const verb = (atomOf(ctx.cmd.args[0]) ?? '').toUpperCase();
    const rest = ctx.cmd.args.slice(1);
    switch (verb) {
      case 'FETCH':
        return runFetch(ctx, rest, true);
      case 'STORE':
        return runStore(ctx, rest, true);
      case 'COPY':
        return runCopy(ctx, rest, true, false);
      case 'MOVE':
        return runCopy(ctx, rest, true, true);
      case 'SEARCH':
        return runSearch(ctx, rest, true);
      case 'EXPUNGE':
        return runExpunge(ctx, rest, true);
      default:
        ctx.session.tagged(ctx.cmd.tag, 'BAD', `UID ${verb.slice(0, 20)} is not a UID command`);
    }
  },
};
