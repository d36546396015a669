import { checkInt } from '../../core/options.ts';
import { DEFAULT_HOST } from '../../core/server.ts';
import type { TlsSettings } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { IMAP_CHAOS_CODES, type CommandChaos } from '../line/chaos.ts';
import { startMailLineServer, type RunningMailLineServer } from '../mail/line-server.ts';
import type { MailStore } from '../mail/store/index.ts';
import { COMMANDS } from './commands/index.ts';
import { ImapReader, type ReaderEvent } from './reader.ts';
import { ImapSession, type ImapResolved } from './session.ts';

export interface ImapServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Default: the shared store under the data dir. */
  store?: MailStore;
  /** Implicit TLS from the first byte (IMAPS, port 993) instead of plain text with STARTTLS. Default false. */
  secure?: boolean;
  tls?: TlsSettings;
  /** Longest line between literals; past it `* BAD [TOOBIG]` and BYE. Default 65,536. */
  maxLineLength?: number;
  /** Largest literal (an APPENDed message); past it the command gets BAD [TOOBIG]. Default 25 MiB. */
  maxLiteralSize?: number;
  /** Largest whole command. Default 26 MiB. */
  maxCommandSize?: number;
  /** Deepest nesting of parentheses and brackets. Default 16. */
  maxNesting?: number;
  /** Deepest nesting of SEARCH keys (NOT, OR and parentheses); deeper gets BAD. Default 64. */
  maxSearchDepth?: number;
  /** Bad or unknown commands per connection; past it BYE. Default 20. */
  maxUnknownCommands?: number;
  /** Commands read ahead of the one running (pipelining); past it the server stops reading until they are done. Default 100. */
  maxPipelinedCommands?: number;
  /** Autologout after this long without a command (IDLE included; RFC 3501 asks for at least 30 min). Default 1,800,000 ms. */
  idleTimeoutMs?: number;
  /** Pause after each wrong password, times the failures so far (capped at 8×). Default 250 ms. */
  authFailureDelayMs?: number;
  /** Wrong passwords per connection before BYE. Default 5. */
  maxAuthFailures?: number;
  /** Connections open at once; more get `* BYE` and are closed. Default 100. */
  maxConnections?: number;
  /**
   * Accept LOGIN and AUTHENTICATE PLAIN on a connection that is not TLS (before STARTTLS), so the password crosses the
   * wire in clear: only for the lab that shows it. Default false: CAPABILITY says LOGINDISABLED and no AUTH=, and both
   * commands get NO [PRIVACYREQUIRED], as Dovecot's disable_plaintext_auth does.
   */
  allowInsecureAuth?: boolean;
  /** Connections open at once from one client address; more from it get `* BYE` and are closed. Default 32. */
  maxConnectionsPerAddress?: number;
  /**
   * Injected failures at chosen commands (servers/line/chaos.ts): NO / BAD, BYE, or a cut connection. A FETCH rule also
   * hits UID FETCH. Change them while running with `setChaos`. Default none.
   */
  chaos?: CommandChaos;
  tracer?: Tracer;
}

export type RunningImapServer = RunningMailLineServer;

export const IMAP_SERVER_DEFAULTS = Object.freeze({
  host: DEFAULT_HOST,
  port: 0,
  secure: false,
  maxLineLength: 65_536,
  maxLiteralSize: 25 * 1024 * 1024,
  maxCommandSize: 26 * 1024 * 1024,
  maxNesting: 16,
  maxSearchDepth: 64,
  maxUnknownCommands: 20,
  maxPipelinedCommands: 100,
  idleTimeoutMs: 1_800_000,
  authFailureDelayMs: 250,
  maxAuthFailures: 5,
  maxConnections: 100,
  allowInsecureAuth: false,
  maxConnectionsPerAddress: 32,
});

/** An IMAP4rev1 server (RFC 3501, with LITERAL+, SASL-IR, IDLE, UIDPLUS, MOVE, NAMESPACE, ID, UNSELECT) over the store. */
export function startImapServer(options: ImapServerOptions = {}): Promise<RunningImapServer> {
  return startMailLineServer<ImapResolved, ReaderEvent>(IMAP_SERVER_DEFAULTS, options, {
    proto: { plain: 'imap', secure: 'imaps' },
    maxLineLength: { min: 256, max: 64 * 1024 * 1024 },
    check: (o) => {
      checkInt('maxLiteralSize', o.maxLiteralSize, 0, 1024 * 1024 * 1024);
      checkInt('maxCommandSize', o.maxCommandSize, 256, 1024 * 1024 * 1024);
      checkInt('maxNesting', o.maxNesting, 1, 1000);
      checkInt('maxSearchDepth', o.maxSearchDepth, 1, 10_000);
    },
    chaosCodes: IMAP_CHAOS_CODES,
    refusal: { maxConnections: '* BYE Too many connections\r\n', maxConnectionsPerAddress: '* BYE Too many connections from your address\r\n', shown: 'BYE' },
    framer: (o) => new ImapReader({ maxLineLength: o.maxLineLength, maxLiteralSize: o.maxLiteralSize, maxCommandSize: o.maxCommandSize }),
    session: (conn, cid, o, stats) => new ImapSession(conn, cid, o, stats, COMMANDS),
  });
}
