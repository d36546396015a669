import type { CommandHandler } from './base.ts';

/** RFC 3501 6.2.1: OK in clear, then TLS; whatever the client pipelined after the command is discarded. */
export const starttls: CommandHandler = {
  states: ['not-authenticated'],
  run({ session, cmd }) {
    if (session.secure) return session.tagged(cmd.tag, 'BAD', 'TLS is already on');
    session.startTls(cmd.tag);
  },
};
