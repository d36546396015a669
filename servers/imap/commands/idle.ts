import { AUTHED, type CommandHandler } from './base.ts';

/** IDLE (RFC 2177): `+ idling`, then every change another session makes is pushed at once, until DONE. */
export const idle: CommandHandler = {
  states: AUTHED,
  run({ session, cmd }) {
    session.send('+ idling');
    session.idling = true;
    session.flush(true);
    session.continuation = (line) => {
      session.idling = false;
      if (line.trim().toUpperCase() !== 'DONE') return session.tagged(cmd.tag, 'BAD', 'Expected DONE');
      session.tagged(cmd.tag, 'OK', 'IDLE terminated');
    };
  },
};
