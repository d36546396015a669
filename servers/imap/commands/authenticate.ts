import { atomOf, type CommandHandler } from './base.ts';
import type { ImapSession } from '../session.ts';

/** AUTHENTICATE PLAIN (RFC 4616), with the initial response on the command line (SASL-IR, RFC 4959) or after `+`. */
export const authenticate: CommandHandler = {
  states: ['not-authenticated'],
  async run({ session, cmd }) {
    const mech = (atomOf(cmd.args[0]) ?? '').toUpperCase();
    if (mech !== 'PLAIN') return session.tagged(cmd.tag, 'NO', `Unsupported mechanism ${mech.slice(0, 20)}`);
    if (session.refusePlaintextAuth(cmd.tag, 'AUTHENTICATE PLAIN')) return;
    const initial = atomOf(cmd.args[1]);
    if (initial !== null) return plain(session, cmd.tag, initial === '=' ? '' : initial);
    session.continuation = (line) => plain(session, cmd.tag, line.trim());
    session.send('+ ');
  },
};

async function plain(session: ImapSession, tag: string, b64: string): Promise<void> {
  if (b64 === '*') return session.tagged(tag, 'BAD', 'AUTHENTICATE cancelled');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return session.tagged(tag, 'BAD', 'Invalid base64 in the SASL response');
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return session.tagged(tag, 'BAD', 'A PLAIN response is authzid NUL user NUL password');
  const [authz, name, password] = parts as [string, string, string];
  const user = session.o.store.authenticate(name, password);
  if (!user || (authz !== '' && authz.toLowerCase() !== user.name.toLowerCase())) return session.loginFailed(tag, name);
  session.loggedIn(tag, user.name);
}
