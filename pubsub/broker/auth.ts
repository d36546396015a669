/**
 * Users and credentials: scrypt password hashes (`hashPassword`), tokens, and the cleartext rule (a password or a
 * token offered over a transport without TLS is refused unless the broker sets `allowInsecureAuth`).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, PubsubError } from '../../core/errors.ts';
import type { ConnectInfo } from './types.ts';
import type { Permissions } from './acl.ts';

export interface BrokerUser {
  name: string;
  /** From `hashPassword`: `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>`. */
  passwordHash?: string;
  /** A bearer token (compared in constant time through its SHA-256). */
  token?: string;
  /** NATS-style allow / deny lists. Absent: everything allowed. */
  permissions?: Permissions;
}

export interface HashPasswordOptions {
  /** scrypt cost (a power of two). Default 16384 (Node's default; ~50 ms here). */
  N?: number;
  r?: number;
  p?: number;
}

const KEYLEN = 32;

function scryptAsync(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEYLEN, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A scrypt hash of `password` with a random 16-byte salt, as `users[].passwordHash` takes it. */
export async function hashPassword(password: string, options: HashPasswordOptions = {}): Promise<string> {
  const { N = 16384, r = 8, p = 1 } = options;
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, N, r, p);
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Whether `password` matches `hash` (from hashPassword). A malformed hash never matches. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0) || N > 1 << 20) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const want = Buffer.from(parts[5]!, 'base64');
  if (want.length !== KEYLEN) return false;
  const got = await scryptAsync(password, salt, N, r, p);
  return timingSafeEqual(got, want);
}

/** Checks a user's hash format when the broker is built (a typo found at start, not at the first login). */
export function isPasswordHash(hash: unknown): boolean {
  return typeof hash === 'string' && /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(hash);
}

function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

export interface AuthConfig {
  users: readonly BrokerUser[];
  allowAnonymous: boolean;
  allowInsecureAuth: boolean;
}

function refuse(why: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_AUTH, why);
}

/**
 * The user a connection authenticates as (undefined: anonymous). Rejects with WL_ERR_PUBSUB_AUTH: unknown user, wrong
 * password or token (one message for all three, so a probe learns nothing), cleartext, or no credentials where
 * anonymous sessions are not allowed.
 */
export async function authenticate(config: AuthConfig, info: ConnectInfo): Promise<BrokerUser | undefined> {
  const c = info.credentials;
  if (c === undefined) {
    if (config.allowAnonymous) return undefined;
    throw refuse('credentials required');
  }
  if (!info.tls && !config.allowInsecureAuth && info.door !== 'internal') {
    throw refuse('credentials over a cleartext transport are refused (use TLS, or set allowInsecureAuth)');
  }
  if ('token' in c) {
    if (typeof c.token !== 'string' || c.token.length === 0) throw refuse('bad credentials');
    const user = config.users.find((u) => u.token !== undefined && sameSecret(u.token, c.token));
    if (user === undefined) throw refuse('bad credentials');
    return user;
  }
  if (typeof c.user !== 'string' || typeof c.password !== 'string') throw refuse('bad credentials');
  const user = config.users.find((u) => u.name === c.user);
  // Verify against a dummy hash for an unknown user, so the answer takes as long either way.
  const ok = await verifyPassword(c.password, user?.passwordHash ?? DUMMY_HASH);
  if (user === undefined || user.passwordHash === undefined || !ok) throw refuse('bad credentials');
  return user;
}

const DUMMY_HASH = `scrypt$16384$8$1$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(KEYLEN).toString('base64')}`;
