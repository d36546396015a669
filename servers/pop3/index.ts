import { DEFAULT_HOST } from '../../core/server.ts';
import type { TlsSettings } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { POP3_CHAOS_CODES, type CommandChaos } from '../line/chaos.ts';
import { lineFramer } from '../line/connection.ts';
import { startMailLineServer, type RunningMailLineServer } from '../mail/line-server.ts';
import type { MailStore } from '../mail/store/index.ts';
import { Pop3Session, type Pop3Resolved } from './session.ts';

export interface Pop3ServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The maildrop is each user's INBOX in this store. Default: the shared store under the data dir. */
  store?: MailStore;
  /** Implicit TLS from the first byte (POP3S, port 995) instead of plain text with STLS. Default false. */
  secure?: boolean;
  tls?: TlsSettings;
  /** Longest command line; past it the client gets -ERR and is disconnected. Default 1024 (RFC 2449 allows 255). */
  maxLineLength?: number;
  /** Unknown or malformed commands tolerated per connection; past it -ERR and disconnect. Default 10. */
  maxUnknownCommands?: number;
  /** Commands read ahead of the one running (PIPELINING); past it the server stops reading until they are done. Default 100. */
  maxPipelinedCommands?: number;
  /** Inactivity autologout (RFC 1939 asks for at least 10 minutes). Default 600,000 ms. */
  idleTimeoutMs?: number;
  /** Pause after each wrong password, times the failures so far (capped at 8×). Default 250 ms. */
  authFailureDelayMs?: number;
  /** Wrong passwords per connection before the server hangs up. Default 5. */
  maxAuthFailures?: number;
  /** Connections open at once; more get `-ERR [SYS/TEMP]` and are closed. Default 100. */
  maxConnections?: number;
  /**
   * Accept USER / PASS and AUTH PLAIN on a connection that is not TLS (before STLS), so the password crosses the wire
   * in clear: only for the lab that shows it. Default false: CAPA offers neither before STLS, and USER and AUTH get
   * `-ERR [AUTH]` before any password is sent (APOP, which sends only a digest, stays allowed).
   */
  allowInsecureAuth?: boolean;
  /** Connections open at once from one client address; more from it get `-ERR [SYS/TEMP]` and are closed. Default 32. */
  maxConnectionsPerAddress?: number;
  /** Injected failures at chosen commands (servers/line/chaos.ts); change them while running with `setChaos`. Default none. */
  chaos?: CommandChaos;
  tracer?: Tracer;
}

export type RunningPop3Server = RunningMailLineServer;

export const POP3_SERVER_DEFAULTS = Object.freeze({
  host: DEFAULT_HOST,
  port: 0,
  secure: false,
  maxLineLength: 1024,
  maxUnknownCommands: 10,
  maxPipelinedCommands: 100,
  idleTimeoutMs: 600_000,
  authFailureDelayMs: 250,
  maxAuthFailures: 5,
  maxConnections: 100,
  allowInsecureAuth: false,
  maxConnectionsPerAddress: 32,
});
export type { Pop3Resolved };

/** A POP3 server (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH PLAIN RFC 5034) over the mail store. */
export function startPop3Server(options: Pop3ServerOptions = {}): Promise<RunningPop3Server> {
  return startMailLineServer<Pop3Resolved, string>(POP3_SERVER_DEFAULTS, options, {
    proto: { plain: 'pop3', secure: 'pop3s' },
    maxLineLength: { min: 64, max: 1024 * 1024 },
    chaosCodes: POP3_CHAOS_CODES,
    // RFC 2449 / 3206: SYS/TEMP, a temporary condition of the server, worth trying again later.
    refusal: {
      maxConnections: '-ERR [SYS/TEMP] too many connections\r\n',
      maxConnectionsPerAddress: '-ERR [SYS/TEMP] too many connections from your address\r\n',
      shown: '-ERR',
    },
    framer: (o) => lineFramer(o.maxLineLength),
    session: (conn, cid, o, stats) => new Pop3Session(conn, cid, o, stats),
  });
}
