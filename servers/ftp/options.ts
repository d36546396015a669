import { join } from 'node:path';
import { checkBoolean, checkInt, checkPort, checkString, InvalidOptionError, rejectRenamed, withDefaults } from '../../core/options.ts';
import { dataDir } from '../../core/paths.ts';
import { checkConnectionLimits, DEFAULT_HOST } from '../../core/server.ts';
import type { TlsSettings } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import type { CommandChaos } from '../line/chaos.ts';

/** One account. Its root is the only folder it can see: `/` in its FTP paths. */
export interface FtpUser {
  name: string;
  password: string;
  /** Real folder this user sees as `/`. Default `<rootDir>/<name>`. */
  root?: string;
  /** Refuse every command that writes (STOR, APPE, STOU, DELE, MKD, RMD, RNFR). Default false. */
  readOnly?: boolean;
  /** Bytes this user's root may hold in all; a STOR past it is cut off with 552. Default the server's quotaBytes. */
  quotaBytes?: number;
}

/** The documented demo account `wirelab up` creates (README, "FTP"). */
export const DEMO_USER: Readonly<FtpUser> = Object.freeze({ name: 'demo', password: 'demo' });

export interface FtpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Accounts. Default one: the demo user (demo / demo). */
  users?: FtpUser[];
  /** Allow `anonymous` / `ftp` with any password, read-only, in `<rootDir>/anonymous`. Default false. */
  anonymous?: boolean;
  /** Folder under which each user's root is made. Default `<data dir>/ftp`. */
  rootDir?: string;
  /** Bytes a user's root may hold (see FtpUser.quotaBytes). Default 64 MiB. */
  quotaBytes?: number;
  /**
   * TLS: with `implicitTls` false, AUTH TLS upgrades the control connection (explicit FTPS, RFC 4217); with it true the
   * connection is TLS from the first byte (implicit FTPS, the 990 convention). `true` uses the local certificate.
   * Default true (AUTH TLS offered).
   */
  tls?: TlsSettings | boolean;
  /** Speak TLS from the first byte (implicit FTPS). Default false. */
  implicitTls?: boolean;
  /**
   * Refuse to log anyone in before the control connection is TLS (534), and refuse transfers over clear data
   * connections (521: send PROT P). Default false.
   */
  requireTls?: boolean;
  /**
   * Accept USER / PASS for a named account on a control connection that is not TLS (before AUTH TLS), so the password
   * crosses the wire in clear: only for labs that show it. Default false: USER gets 530 before any password is sent,
   * as vsftpd's force_local_logins_ssl does (anonymous logins, which carry no secret, stay allowed when `anonymous`).
   */
  allowInsecureAuth?: boolean;
  /** Lowest port PASV / EPSV listen on; 0 with pasvPortMax 0 means any free port. Default 0. */
  pasvPortMin?: number;
  /** Highest port PASV / EPSV listen on. Default 0. */
  pasvPortMax?: number;
  /** Longest command line, CRLF excluded; past it: 500 and the connection is closed. Default 2048. */
  maxLineLength?: number;
  /** Control connections open at once; more get 421 at once. Default 64. */
  maxConnections?: number;
  /**
   * Control connections open at once from one client address; more from it get 421, so one address cannot take every
   * slot for the idle timeout. Default 32.
   */
  maxConnectionsPerAddress?: number;
  /** Unknown or malformed commands tolerated per connection before 421 and close. Default 20. */
  maxUnknownCommands?: number;
  /**
   * Commands read ahead of the one running (a client that pipelines); past it the server stops reading until they are
   * answered, so a flood cannot grow the queue. Default 64.
   */
  maxPipelinedCommands?: number;
  /** Wrong passwords per connection before 421 and close. Default 5. */
  maxAuthFailures?: number;
  /**
   * Each wrong password's reply is held back this long times the failures so far from that client address (across
   * connections, at most 30 s). Default 400 ms.
   */
  authFailureDelayMs?: number;
  /** A control connection silent this long gets 421 and is closed. Default 300,000 ms. */
  idleTimeoutMs?: number;
  /** How long a data connection may take to be opened (passive: by the client; active: by us). Default 10,000 ms. */
  dataTimeoutMs?: number;
  /** A data connection that moves no byte this long is closed and the transfer answered 426. Default 60,000 ms. */
  dataIdleTimeoutMs?: number;
  /** Entries a listing may hold; past it the listing is cut and says so. Default 10,000. */
  maxListEntries?: number;
  /**
   * Injected failures at chosen commands (servers/line/chaos.ts): a 4xx / 5xx reply instead of the command, 421 and a
   * close, or a cut connection. Change them while running with `setChaos`. Default none.
   */
  chaos?: CommandChaos;
  tracer?: Tracer;
}

export type ResolvedFtpOptions = Required<Omit<FtpServerOptions, 'tracer' | 'tls' | 'chaos'>> & {
  tls: TlsSettings | false;
};

export const FTP_SERVER_DEFAULTS = Object.freeze({
  host: DEFAULT_HOST,
  port: 0,
  anonymous: false,
  quotaBytes: 64 * 1024 * 1024,
  tls: true,
  implicitTls: false,
  requireTls: false,
  allowInsecureAuth: false,
  pasvPortMin: 0,
  pasvPortMax: 0,
  maxLineLength: 2048,
  maxConnections: 64,
  maxConnectionsPerAddress: 32,
  maxUnknownCommands: 20,
  maxPipelinedCommands: 64,
  maxAuthFailures: 5,
  authFailureDelayMs: 400,
  idleTimeoutMs: 300_000,
  dataTimeoutMs: 10_000,
  dataIdleTimeoutMs: 60_000,
  maxListEntries: 10_000,
} as const);

/** Merges the defaults and checks every option, throwing a TypeError that names a bad one. */
export function resolveFtpOptions(options: FtpServerOptions): ResolvedFtpOptions {
  rejectRenamed(options);
  const o = withDefaults(FTP_SERVER_DEFAULTS, options);
  checkPort('port', o.port);
  checkPort('pasvPortMin', o.pasvPortMin);
  checkPort('pasvPortMax', o.pasvPortMax);
  if (o.pasvPortMin > o.pasvPortMax) throw new InvalidOptionError('pasvPortMax', `>= pasvPortMin (${o.pasvPortMin})`, o.pasvPortMax);
  if (o.pasvPortMin === 0 && o.pasvPortMax !== 0) throw new InvalidOptionError('pasvPortMin', 'a port when pasvPortMax is set', 0);
  checkBoolean('allowInsecureAuth', o.allowInsecureAuth);
  checkBoolean('requireTls', o.requireTls);
  checkBoolean('anonymous', o.anonymous);
  checkInt('quotaBytes', o.quotaBytes, 0, Number.MAX_SAFE_INTEGER);
  checkInt('maxLineLength', o.maxLineLength, 16, 1024 * 1024);
  checkConnectionLimits(o, 100_000);
  checkInt('maxUnknownCommands', o.maxUnknownCommands, 1, 1_000_000);
  checkInt('maxPipelinedCommands', o.maxPipelinedCommands, 1, 100_000);
  checkInt('maxAuthFailures', o.maxAuthFailures, 1, 1000);
  checkInt('authFailureDelayMs', o.authFailureDelayMs, 0, 60_000);
  checkInt('idleTimeoutMs', o.idleTimeoutMs, 0, 24 * 3600_000);
  checkInt('dataTimeoutMs', o.dataTimeoutMs, 1, 3600_000);
  checkInt('dataIdleTimeoutMs', o.dataIdleTimeoutMs, 1, 24 * 3600_000);
  checkInt('maxListEntries', o.maxListEntries, 1, 10_000_000);
  const rootDir = o.rootDir ?? join(dataDir(), 'ftp');
  checkString('rootDir', rootDir);
  const users = (o.users ?? [DEMO_USER]).map((u, i) => {
    checkString(`users[${i}].name`, u?.name);
    checkString(`users[${i}].password`, u.password);
    if (/[\s/\\]|^\.\.?$/.test(u.name)) throw new InvalidOptionError(`users[${i}].name`, 'a name without spaces or slashes', u.name);
    if (u.quotaBytes !== undefined) checkInt(`users[${i}].quotaBytes`, u.quotaBytes, 0, Number.MAX_SAFE_INTEGER);
    return { ...u, root: u.root ?? join(rootDir, u.name) };
  });
  const tls = o.tls === false ? false : o.tls === true ? {} : o.tls;
  if ((o.implicitTls || o.requireTls) && tls === false) {
    throw new InvalidOptionError('tls', 'TLS settings when implicitTls or requireTls is true', false);
  }
  if (!o.allowInsecureAuth && !o.anonymous && tls === false) {
    throw new InvalidOptionError('allowInsecureAuth', 'true when tls is false and anonymous is off (nobody could log in)', false);
  }
  const { chaos: _chaos, ...rest } = o as typeof o & { chaos?: CommandChaos };
  return { ...rest, rootDir, users, tls };
}
