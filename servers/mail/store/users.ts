import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { writeAtomic } from './disk.ts';
import { DEFAULT_DOMAINS, DEMO_USER, type MailUser, type UsersConfig } from './types.ts';

/**
 * Reads the users file, writing one with the demo user (demo / demo) when there is none, so `wirelab up` works out of
 * the box. Edit the file to add users: `{ "users": [{ "name": "ann", "password": "..." }], "domains": ["localhost"] }`.
 */
export async function loadUsersFile(file: string): Promise<UsersConfig> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<UsersConfig>;
    const users = (parsed.users ?? []).filter(
      (u): u is MailUser => typeof u?.name === 'string' && /^[A-Za-z0-9._-]+$/.test(u.name) && typeof u.password === 'string',
    );
    return { users, domains: Array.isArray(parsed.domains) ? parsed.domains.map(String) : DEFAULT_DOMAINS };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const config: UsersConfig = { users: [DEMO_USER], domains: DEFAULT_DOMAINS };
  await mkdir(dirname(file), { recursive: true });
  await writeAtomic(file, JSON.stringify(config, null, 2) + '\n', dirname(file));
  return config;
}

/** Compares passwords in time independent of where they differ. */
export function passwordMatches(user: MailUser, password: string): boolean {
  const a = Buffer.from(user.password);
  const b = Buffer.from(password);
  return a.length === b.length && timingSafeEqual(a, b);
}
