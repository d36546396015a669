import type { CommandHandler } from './base.ts';
import { ANY, AUTHED } from './base.ts';

export const capability: CommandHandler = {
  states: ANY,
  run({ session, cmd }) {
    session.send(`* CAPABILITY ${session.capabilities().join(' ')}`);
    session.tagged(cmd.tag, 'OK', 'CAPABILITY completed');
  },
};

/** NOOP and CHECK: nothing to do but report what changed (RFC 3501 6.1.2). */
export const noop: CommandHandler = {
  states: ANY,
  run({ session, cmd }) {
    session.tagged(cmd.tag, 'OK', `${cmd.name} completed`);
  },
};

export const logout: CommandHandler = {
  states: ANY,
  run({ session, cmd }) {
    session.send('* BYE wirelab IMAP4rev1 server logging out');
    session.tagged(cmd.tag, 'OK', 'LOGOUT completed');
    session.bye();
  },
};

/** RFC 2971: who we are (clients such as imapflow send theirs first). */
export const id: CommandHandler = {
  states: ANY,
  run({ session, cmd }) {
    session.send('* ID ("name" "wirelab" "vendor" "wirelab")');
    session.tagged(cmd.tag, 'OK', 'ID completed');
  },
};

/** RFC 2342: one personal namespace, "/" as the hierarchy delimiter. */
export const namespace: CommandHandler = {
  states: AUTHED,
  run({ session, cmd }) {
    session.send('* NAMESPACE (("" "/")) NIL NIL');
    session.tagged(cmd.tag, 'OK', 'NAMESPACE completed');
  },
};
