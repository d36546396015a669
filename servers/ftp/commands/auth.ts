import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { sleep } from '../../../core/time.ts';
import { Jail } from '../paths.ts';
import type { CommandTable, FtpSession, ResolvedUser } from '../session.ts';

const ANONYMOUS = new Set(['anonymous', 'ftp']);

function samePassword(a: string, b: string): boolean {
  // Hash first so the comparison takes the same time whatever the lengths.
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

function findUser(s: FtpSession, name: string, password: string): { user: ResolvedUser; readOnly: boolean } | undefined {
  if (s.o.anonymous && ANONYMOUS.has(name.toLowerCase())) {
    return { user: { name: 'anonymous', password: '', root: `${s.o.rootDir}/anonymous` }, readOnly: true };
  }
  let found: ResolvedUser | undefined;
  for (const u of s.o.users as ResolvedUser[]) {
    // Every account is compared, so the time taken does not say whether the name exists.
    if (u.name === name && samePassword(u.password, password)) found = u;
  }
  return found ? { user: found, readOnly: Boolean(found.readOnly) } : undefined;
}

export const authCommands: CommandTable = {
  USER: {
    help: 'USER <name>',
    beforeLogin: true,
    needsArg: true,
    run(s, arg) {
      if (s.state === 'ready') return void s.reply(530, 'Already logged in; USER cannot change user here.');
      // RFC 4217 section 9: a server that will not accept a login in the clear answers 534 (policy).
      if (s.o.requireTls && !s.secure) return void s.reply(534, 'TLS required: send AUTH TLS first.');
      const name = arg.trim();
      const anon = s.o.anonymous && ANONYMOUS.has(name.toLowerCase());
      // Refused at USER, so a client that stops at the first error never sends PASS (vsftpd: force_local_logins_ssl).
      if (!anon && !s.secure && !s.o.allowInsecureAuth) {
        s.trace('*', 'auth-refused', 'USER before AUTH TLS refused (allowInsecureAuth=false)');
        return void s.reply(530, 'Non-anonymous sessions must use encryption: send AUTH TLS first.');
      }
      s.pendingUser = name;
      s.state = 'password';
      // The same answer for every name: a 331 never says whether the account exists.
      void s.reply(331, anon ? 'Anonymous login ok, send your e-mail address as password.' : 'Password required.');
    },
  },
  PASS: {
    help: 'PASS <password>',
    beforeLogin: true,
    async run(s, arg) {
      if (s.state === 'ready') return void s.reply(230, 'Already logged in.');
      if (s.state !== 'password' || s.pendingUser === undefined) return void s.reply(503, 'Send USER first.');
      const found = findUser(s, s.pendingUser, arg);
      if (!found) {
        s.authFailures++;
        s.state = 'user';
        const fromAddress = s.ctx.failures.add(s.peer);
        s.trace('*', 'auth', `login failed for ${JSON.stringify(s.pendingUser)} (${s.authFailures}/${s.o.maxAuthFailures} on this connection, ${fromAddress} from ${s.peer})`, {
          failures: s.authFailures,
          fromAddress,
        });
        if (s.authFailures >= s.o.maxAuthFailures) {
          s.trace('*', 'limit', `maxAuthFailures=${s.o.maxAuthFailures} reached: closing`);
          return s.close(421, 'Too many failed logins, closing control connection.');
        }
        // Each failure from this address waits longer before its answer (commands queue behind it), capped at 30 s.
        await sleep(Math.min(30_000, s.o.authFailureDelayMs * fromAddress));
        return void s.reply(530, 'Login incorrect.');
      }
      s.ctx.failures.clear(s.peer);
      await mkdir(found.user.root, { recursive: true });
      s.jail = await Jail.open(found.user.root);
      s.user = found.user;
      s.readOnly = found.readOnly;
      s.state = 'ready';
      s.cwd = '/';
      s.trace('*', 'auth', `logged in as ${found.user.name}${found.readOnly ? ' (read-only)' : ''}`);
      void s.reply(230, `User ${found.user.name} logged in${found.readOnly ? ', read-only' : ''}.`);
    },
  },
  AUTH: {
    help: 'AUTH TLS',
    beforeLogin: true,
    needsArg: true,
    async run(s, arg) {
      const mech = arg.trim().toUpperCase();
      if (mech !== 'TLS' && mech !== 'TLS-C' && mech !== 'SSL') return void s.reply(504, 'Only AUTH TLS is supported.');
      if (!s.ctx.secureContext) return void s.reply(502, 'TLS is not configured on this server.');
      if (s.secure) return void s.reply(503, 'Already using TLS.');
      await s.reply(234, 'AUTH TLS successful, start the TLS handshake.');
      s.upgradeToTls();
    },
  },
  PBSZ: {
    help: 'PBSZ 0',
    beforeLogin: true,
    needsArg: true,
    run(s) {
      if (!s.secure) return void s.reply(503, 'PBSZ needs a TLS control connection (AUTH TLS first).');
      s.pbsz = true;
      // RFC 4217: TLS has no buffer size of its own, so the answer is always 0.
      void s.reply(200, 'PBSZ=0');
    },
  },
  PROT: {
    help: 'PROT C|P',
    beforeLogin: true,
    needsArg: true,
    run(s, arg) {
      const level = arg.trim().toUpperCase();
      if (!s.secure) return void s.reply(503, 'PROT needs a TLS control connection (AUTH TLS first).');
      if (!s.pbsz) return void s.reply(503, 'Send PBSZ first.');
      if (level === 'S' || level === 'E') return void s.reply(536, `Protection level ${level} is not supported.`);
      if (level !== 'C' && level !== 'P') return void s.reply(504, 'Unknown protection level.');
      s.prot = level;
      s.data.secureContext = level === 'P' ? s.ctx.secureContext : undefined;
      void s.reply(200, level === 'P' ? 'Data connections will be TLS (PROT P).' : 'Data connections will be clear (PROT C).');
    },
  },
  ACCT: { help: 'ACCT <account>', beforeLogin: true, run: (s) => void s.reply(202, 'No account needed.') },
  QUIT: {
    help: 'QUIT',
    beforeLogin: true,
    run(s) {
      s.close(221, 'Goodbye.');
    },
  },
};
