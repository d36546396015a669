import tls from 'node:tls';
import { rejectRenamed } from '../../core/options.ts';
import { closeTcpServer, DEFAULT_HOST, SocketSet, type RunningServer } from '../../core/server.ts';
import { tlsServerOptions, type TlsSettings } from '../../core/tls/index.ts';
import { NOOP_TRACER, nextCid, type Tracer } from '../../core/trace/index.ts';
import { LineConnection, lineFramer } from '../line/connection.ts';
import { checkLineServerOptions, listenLineServer, refuseTraced } from '../line/server.ts';
import { newStats, type MailServerStats } from '../mail/conn.ts';
import { defaultMailStore } from '../mail/shared.ts';
import type { MailStore } from '../mail/store/index.ts';
import { Pop3Session, type Pop3Resolved } from './session.ts';
import { CommandChaosPolicy, POP3_CHAOS_CODES, type CommandChaos } from '../line/chaos.ts';

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

export interface RunningPop3Server extends RunningServer {
  readonly store: MailStore;
  readonly stats: MailServerStats;
  /** The chaos rules in force, how often each fired. */
  readonly chaos: CommandChaosPolicy;
  setChaos(chaos: CommandChaos): void;
}

const DEFAULTS = {
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
};
export type { Pop3Resolved };

/** A POP3 server (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH PLAIN RFC 5034) over the mail store. */
export async function startPop3Server(options: Pop3ServerOptions = {}): Promise<RunningPop3Server> {
  rejectRenamed(options);
  const merged = { ...DEFAULTS, ...options };
  checkLineServerOptions(merged, { min: 64, max: 1024 * 1024 });
  const settings = options.tls ?? {};
  const tlsOptions = await tlsServerOptions(settings);
  const o: Pop3Resolved & typeof DEFAULTS = {
    ...merged,
    store: options.store ?? (await defaultMailStore()),
    tracer: options.tracer ?? NOOP_TRACER,
    tls: { context: tls.createSecureContext(tlsOptions), options: tlsOptions, settings },
    proto: merged.secure ? 'pop3s' : 'pop3',
    chaos: new CommandChaosPolicy(POP3_CHAOS_CODES, options.chaos),
  };
  const stats = newStats();
  const sessions = new Set<Pop3Session>();
  const sockets = new SocketSet();
  const { server, port } = await listenLineServer({
    sockets,
    host: o.host,
    port: o.port,
    implicitTls: o.secure ? { options: tlsOptions } : undefined,
    limits: o,
    tracer: o.tracer,
    proto: o.proto,
    serverCid: `${o.proto}-server`,
    // RFC 2449 / 3206: SYS/TEMP, a temporary condition of the server, worth trying again later.
    refuse: (socket, limit) =>
      refuseTraced(o.tracer, o.proto, nextCid(o.proto), socket, limit, o[limit], limit === 'maxConnections' ? '-ERR [SYS/TEMP] too many connections\r\n' : '-ERR [SYS/TEMP] too many connections from your address\r\n', '-ERR'),
    accept: (socket) => {
      const cid = nextCid(o.proto);
      stats.connections++;
      const conn = new LineConnection(socket, {
        proto: o.proto,
        cid,
        tracer: o.tracer,
        framer: () => lineFramer(o.maxLineLength),
        maxPipelined: o.maxPipelinedCommands,
        idleTimeoutMs: o.idleTimeoutMs,
        release: (s) => sockets.release(s),
        counters: stats,
      });
      const session = new Pop3Session(conn, cid, o, stats);
      sessions.add(session);
      socket.once('close', () => sessions.delete(session));
    },
  });
  o.tracer.emit(o.proto, `${o.proto}-server`, '*', 'listen', () => `listening on ${o.host}:${port}`);
  return {
    proto: o.proto,
    host: o.host,
    port,
    url: `${o.proto}://${o.host}:${port}`,
    store: o.store,
    stats,
    chaos: o.chaos,
    setChaos: (chaos) => o.chaos.set(chaos),
    close: async () => {
      for (const s of sessions) s.release();
      await closeTcpServer(server, sockets);
    },
  };
}
