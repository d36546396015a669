import type net from 'node:net';
import tls from 'node:tls';
import { rejectRenamed, withDefaults } from '../../core/options.ts';
import { closeTcpServer, SocketSet, type ConnectionLimitName, type RunningServer } from '../../core/server.ts';
import { tlsServerOptions, type TlsSettings } from '../../core/tls/index.ts';
import { NOOP_TRACER, nextCid, type Tracer } from '../../core/trace/index.ts';
import { CommandChaosPolicy, type ChaosCodes, type CommandChaos } from '../line/chaos.ts';
import { LineConnection, type Framer, type ServerTls } from '../line/connection.ts';
import { checkLineServerOptions, listenLineServer, refuseTraced, type LineServerLimits } from '../line/server.ts';
import { newStats, type MailServerStats } from './conn.ts';
import { defaultMailStore } from './shared.ts';
import type { MailStore } from './store/index.ts';

/** What a mail line server's caller may pass besides its limits. */
export interface MailLineServerInput {
  host?: string;
  store?: MailStore;
  secure?: boolean;
  tls?: TlsSettings;
  chaos?: CommandChaos;
  tracer?: Tracer;
}

/** The options an IMAP or POP3 session reads: its server's limits, resolved, and what every connection shares. */
export interface MailLineResolved extends LineServerLimits {
  host: string;
  secure: boolean;
  proto: string;
  store: MailStore;
  tracer: Tracer;
  tls: ServerTls;
  /** Injected failures (servers/line/chaos.ts), checked before each command runs. */
  chaos: CommandChaosPolicy;
}

export interface RunningMailLineServer extends RunningServer {
  readonly store: MailStore;
  readonly stats: MailServerStats;
  /** The chaos rules in force, how often each fired. */
  readonly chaos: CommandChaosPolicy;
  setChaos(chaos: CommandChaos): void;
}

/** The resolved fields every connection shares, made here rather than passed as options. */
type Shared = 'proto' | 'store' | 'tracer' | 'tls' | 'chaos';

/** What makes IMAP and POP3 differ when they listen: names, answers, framing and the session. */
export interface MailLineProtocol<R extends MailLineResolved, T> {
  /** Trace protos in clear (STARTTLS) and with implicit TLS. */
  proto: { plain: string; secure: string };
  /** The range maxLineLength may take on this protocol. */
  maxLineLength: { min: number; max: number };
  /** Checks the protocol's own options (those beyond LineServerLimits). */
  check?(o: R): void;
  chaosCodes: ChaosCodes;
  /** The answer to a connection past a limit, and how the trace shows it (e.g. `* BYE ...` shown as BYE). */
  refusal: Record<ConnectionLimitName, string> & { shown: string };
  framer(o: R): Framer<T>;
  /** Starts the protocol on an accepted connection; the session's `release()`, if it has one, runs when the server closes. */
  session(conn: LineConnection<T>, cid: string, o: R, stats: MailServerStats): object;
}

/**
 * Starts a mail line server (IMAP, POP3): options checked and resolved once, the listener with its connection limits
 * and refusals, a LineConnection per accepted socket handed to the protocol's session.
 */
export async function startMailLineServer<R extends MailLineResolved, T>(
  defaults: Omit<R, Shared>,
  options: MailLineServerInput & Partial<Omit<R, Shared>>,
  p: MailLineProtocol<R, T>,
): Promise<RunningMailLineServer> {
  rejectRenamed(options);
  const limits = withDefaults(defaults, options);
  const settings = options.tls ?? {};
  const tlsOptions = await tlsServerOptions(settings);
  const proto = limits.secure ? p.proto.secure : p.proto.plain;
  const o = {
    ...limits,
    proto,
    store: options.store ?? (await defaultMailStore()),
    tracer: options.tracer ?? NOOP_TRACER,
    tls: { context: tls.createSecureContext(tlsOptions), options: tlsOptions, settings },
    chaos: new CommandChaosPolicy(p.chaosCodes, options.chaos),
  } as unknown as R;
  checkLineServerOptions(o, p.maxLineLength);
  p.check?.(o);
  const stats = newStats();
  const sessions = new Set<object>();
  const sockets = new SocketSet();
  const { server, port } = await listenLineServer({
    sockets,
    host: o.host,
    port: o.port,
    implicitTls: o.secure ? { options: tlsOptions } : undefined,
    limits: o,
    tracer: o.tracer,
    proto,
    serverCid: `${proto}-server`,
    refuse: (socket: net.Socket, limit) => refuseTraced(o.tracer, proto, nextCid(proto), socket, limit, o[limit], p.refusal[limit], p.refusal.shown),
    accept: (socket) => {
      const cid = nextCid(proto);
      stats.connections++;
      const conn = new LineConnection<T>(socket, {
        proto,
        cid,
        tracer: o.tracer,
        framer: () => p.framer(o),
        maxPipelined: o.maxPipelinedCommands,
        idleTimeoutMs: o.idleTimeoutMs,
        release: (s) => sockets.release(s),
        counters: stats,
      });
      const session = p.session(conn, cid, o, stats);
      sessions.add(session);
      socket.once('close', () => sessions.delete(session));
    },
  });
  o.tracer.emit(proto, `${proto}-server`, '*', 'listen', () => `listening on ${o.host}:${port}`);
  return {
    proto,
    host: o.host,
    port,
    url: `${proto}://${o.host}:${port}`,
    store: o.store,
    stats,
    chaos: o.chaos,
    setChaos: (chaos) => o.chaos.set(chaos),
    close: async () => {
      for (const s of sessions) if ('release' in s && typeof s.release === 'function') s.release();
      await closeTcpServer(server, sockets);
    },
  };
}
