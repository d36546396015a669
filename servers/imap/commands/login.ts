import { astring } from '../parser.ts';
import { arity, type CommandHandler } from './base.ts';

export const login: CommandHandler = {
  states: ['not-authenticated'],
  async run(ctx) {
    if (!arity(ctx, 2)) return;
    const { session, cmd } = ctx;
    if (session.refusePlaintextAuth(cmd.tag, 'LOGIN')) return;
    const name = astring(cmd.args[0]);
    const password = astring(cmd.args[1]);
    if (name === null || password === null) return session.tagged(cmd.tag, 'BAD', 'LOGIN user password');
    const user = session.o.store.authenticate(name, password);
    if (!user) return session.loginFailed(cmd.tag, name);
    session.loggedIn(cmd.tag, user.name);
  },
};
