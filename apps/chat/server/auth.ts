/**
 * Who a chat user is (issue 15): by default anyone joins with a name (a guest). With `users` configured (the pub/sub
 * layer's users: a scrypt `passwordHash` from hashPassword, or a `token`), a registered name can only be used with its
 * password or token, and with `allowGuests: false` nobody joins without them. The check is the broker's own
 * (pubsub/broker/auth.ts `authenticate`): one answer for an unknown user, a wrong password and a wrong token, an
 * unknown name costs the same scrypt time, and credentials on a connection without TLS are refused unless
 * `allowInsecureAuth` is set (the project's convention: FTP, SMTP, IMAP, the broker). Secrets never reach a trace.
 */
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { InvalidOptionError } from '../../../core/options.ts';
import { authenticate, isPasswordHash, type BrokerUser } from '../../../pubsub/broker/auth.ts';
import { ChatCodes, nameProblem } from '../protocol.ts';

/** A chat account: a name with a scrypt password hash (hashPassword) and / or a token. */
export type ChatUser = Pick<BrokerUser, 'name' | 'passwordHash' | 'token'>;

export type AuthMethod = 'password' | 'token' | 'guest';

export interface HelloCredentials {
  name?: string;
  password?: string;
  token?: string;
}

export type AuthResult = { ok: true; name: string; method: AuthMethod } | { ok: false; code: string; message: string };

/** Checks `users` when the server is built: a typo is an error at start, not at the first login. */
export function checkChatUsers(users: unknown, maxNameChars: number): ChatUser[] {
  if (!Array.isArray(users)) throw new InvalidOptionError('users', 'a list of { name, passwordHash?, token? }', users);
  const names = new Set<string>();
  const tokens = new Set<string>();
  return users.map((u: unknown, i) => {
    const x = u as Partial<ChatUser> | null;
    const where = `users[${i}]`;
    if (typeof x !== 'object' || x === null) throw new InvalidOptionError(where, 'an object { name, passwordHash?, token? }', u);
    const problem = nameProblem(x.name, maxNameChars);
    if (problem) throw new InvalidOptionError(`${where}.name`, problem, x.name);
    if (names.has(x.name!)) throw new InvalidOptionError(`${where}.name`, 'a name listed once', x.name);
    names.add(x.name!);
    if (x.passwordHash === undefined && x.token === undefined) throw new InvalidOptionError(where, 'a passwordHash or a token', '(neither)');
    // The value itself is never echoed: it is a secret (or a hash of one).
    if (x.passwordHash !== undefined && !isPasswordHash(x.passwordHash)) throw new InvalidOptionError(`${where}.passwordHash`, 'a scrypt hash from hashPassword (scrypt$N$r$p$salt$hash)', '(redacted)');
    if (x.token !== undefined && (typeof x.token !== 'string' || x.token.length < 8)) throw new InvalidOptionError(`${where}.token`, 'a string of at least 8 characters', '(redacted)');
    if (x.token !== undefined && tokens.has(x.token)) throw new InvalidOptionError(`${where}.token`, 'a token given to one user only', '(redacted)');
    if (x.token !== undefined) tokens.add(x.token);
    return { name: x.name!, ...(x.passwordHash !== undefined ? { passwordHash: x.passwordHash } : {}), ...(x.token !== undefined ? { token: x.token } : {}) };
  });
}

export class ChatAuth {
  readonly #registered: Set<string>;

  constructor(
    private readonly users: readonly ChatUser[],
    private readonly allowGuests: boolean,
    private readonly allowInsecureAuth: boolean,
  ) {
    this.#registered = new Set(users.map((u) => u.name));
  }

  /** Whether this server has accounts (the page shows a password field). */
  get accounts(): boolean {
    return this.users.length > 0;
  }

  /**
   * What the page needs to know before it sends a secret (GET /auth.json): accounts at all, with a password, with a
   * token (which field to show), guests, and whether a secret may go over plain http.
   */
  info(): { accounts: boolean; passwords: boolean; tokens: boolean; guests: boolean; allowInsecureAuth: boolean } {
    const passwords = this.users.some((u) => u.passwordHash !== undefined);
    const tokens = this.users.some((u) => u.token !== undefined);
    return { accounts: this.accounts, passwords, tokens, guests: this.allowGuests, allowInsecureAuth: this.allowInsecureAuth };
  }

  /** A hello without credentials, answered at once (no scrypt: a guest's hello stays synchronous). */
  guest(hello: HelloCredentials): AuthResult | undefined {
    if (hello.password !== undefined || hello.token !== undefined) return undefined;
    if (hello.name !== undefined && this.#registered.has(hello.name)) return { ok: false, code: ChatCodes.AUTH, message: `${hello.name} is a registered name: give its password or token` };
    if (!this.allowGuests) return { ok: false, code: ChatCodes.AUTH, message: 'this chat needs a password or a token (guests are off: allowGuests)' };
    if (hello.name === undefined) return { ok: false, code: ChatCodes.NAME, message: 'a name is a non-empty string' };
    return { ok: true, name: hello.name, method: 'guest' };
  }

  /** Who a hello is: a guest, or a user whose password or token matched. `secure`: the connection is TLS. */
  async check(hello: HelloCredentials, secure: boolean, peer: string): Promise<AuthResult> {
    const fail = (message: string): AuthResult => ({ ok: false, code: ChatCodes.AUTH, message });
    const guest = this.guest(hello);
    if (guest) return guest;
    const credentials = hello.token !== undefined ? { token: hello.token } : { user: hello.name ?? '', password: hello.password! };
    try {
      const user = await authenticate({ users: this.users, allowAnonymous: false, allowInsecureAuth: this.allowInsecureAuth }, { door: 'ws', peer, tls: secure, credentials });
      if (!user) return fail('bad credentials');
      if (hello.name !== undefined && hello.name !== user.name) return fail('bad credentials');
      return { ok: true, name: user.name, method: hello.token !== undefined ? 'token' : 'password' };
    } catch (err) {
      if (err instanceof PubsubError && err.code === ErrorCodes.PUBSUB_AUTH) {
        return fail(/cleartext/.test(err.message) ? 'a password or token over a connection without TLS is refused (the server option allowInsecureAuth allows it)' : err.message);
      }
      throw err;
    }
  }
}
