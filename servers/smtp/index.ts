import { format } from 'node:util';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { checkBoolean, checkInt, checkPort, checkString, rejectRenamed, withDefaults } from '../../core/options.ts';
import { DEFAULT_HOST, listenTcp, type RunningServer } from '../../core/server.ts';
import { tlsServerOptions, type TlsSettings } from '../../core/tls/index.ts';
import { lineMask, NOOP_TRACER, nextCid, oneLine, redactLine, socketEnds, tapSocket, type Tracer, type WireMask } from '../../core/trace/index.ts';
import { sleep } from '../../core/time.ts';
import { authFailureDelay, defaultMailStore } from '../mail/shared.ts';
import { ChaosPolicy, type SmtpChaos, type SmtpChaosTrigger } from '../mail/chaos.ts';
import type { MailStore } from '../mail/store/index.ts';
import { MessageSpool, type SpooledMessage } from '../mail/spool.ts';
import { RelayQueue, receivedHeader, type SmtpRelayOptions } from '../mail/relay.ts';

export type { SmtpChaos, SmtpChaosRule, SmtpChaosTrigger } from '../mail/chaos.ts';
export { RelayQueue, SMTP_RELAY_DEFAULTS, type RelayOutcome, type SmtpRelayOptions } from '../mail/relay.ts';

export interface SmtpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The store recipients are checked against and delivered into. Default: the shared store under the data dir. */
  store?: MailStore;
  /** Implicit TLS from the first byte (SMTPS, port 465) instead of plain text with STARTTLS. Default false. */
  secure?: boolean;
  /** Certificates and versions (core/tls). */
  tls?: TlsSettings;
  /** Refuse MAIL FROM until the client authenticated (submission). Default false: anyone may deliver locally. */
  requireAuth?: boolean;
  /**
   * Largest message accepted; SIZE is advertised and a larger one gets 552 at the end of DATA. Bytes are counted as
   * they arrive and none past the limit are kept; an accepted message is spooled to the store's disk while it
   * arrives. Default 10 MiB.
   */
  maxMessageSize?: number;
  /** Connections open at once; more get 421 (smtp-server's own check, its `maxClients`). Default 100. */
  maxConnections?: number;
  /** Connections open at once from one client address; more from it get 421 and are closed. Default 32. */
  maxConnectionsPerAddress?: number;
  /** Recipients per message. Default 100. */
  maxRecipients?: number;
  /** A silent connection gets 421 and is closed after this long (smtp-server's `socketTimeout`). Default 60,000 ms. */
  idleTimeoutMs?: number;
  /**
   * Longest command line, CRLF excluded; past it: 421 and the connection is closed (smtp-server's `maxCommandLength`).
   * Default 16,384 (RFC 4954 lets an AUTH line reach 12,288).
   */
  maxLineLength?: number;
  /** Pause after each wrong password, times the number of failures so far (capped at 8×). Default 250 ms. */
  authFailureDelayMs?: number;
  /** Wrong passwords per connection; the last one is answered 421 and the connection closed. Default 5. */
  maxAuthFailures?: number;
  /**
   * Accept AUTH on a connection that is not TLS (before STARTTLS), so the password crosses the wire in clear: only for
   * the lab that shows it. Default false: AUTH before STARTTLS gets 538, as Postfix's smtpd_tls_auth_only does.
   */
  allowInsecureAuth?: boolean;
  /** Injected failures; change them while running with `setChaos`. Default none. */
  chaos?: SmtpChaos;
  /** The name this server gives itself: greeting, EHLO, `Received:` lines, bounces. Default 'wirelab.test'. */
  hostname?: string;
  /**
   * Prepend a `Received:` header to every accepted message (RFC 5321 4.4 asks it of every MTA). Default false, so a
   * message a client sends is stored byte for byte as it was sent; always on with `relay`.
   */
  addReceived?: boolean;
  /**
   * Relay (servers/mail/relay.ts): a recipient this server does not deliver is accepted when the sender is one of its
   * users (or the session authenticated), queued, forwarded here, and bounced to the sender on a final failure.
   * Default none: such a recipient gets 550.
   */
  relay?: SmtpRelayOptions;
  /** Where chaos draws its random numbers (a seeded generator makes a lab repeatable). Default Math.random. */
  random?: () => number;
  tracer?: Tracer;
}

export interface RunningSmtpServer extends RunningServer {
  readonly store: MailStore;
  /** Messages delivered (one per accepted DATA, whatever the number of recipients). */
  readonly stats: { connections: number; delivered: number; rejected: number };
  setChaos(chaos: SmtpChaos): void;
  /** The relay queue, with `relay`. */
  readonly relay: RelayQueue | null;
}

export const SMTP_SERVER_DEFAULTS = Object.freeze({
  host: DEFAULT_HOST,
  port: 0,
  secure: false,
  requireAuth: false,
  maxMessageSize: 10 * 1024 * 1024,
  maxConnections: 100,
  maxConnectionsPerAddress: 32,
  maxRecipients: 100,
  idleTimeoutMs: 60_000,
  maxLineLength: 16 * 1024,
  authFailureDelayMs: 250,
  maxAuthFailures: 5,
  allowInsecureAuth: false,
  hostname: 'wirelab.test',
  addReceived: false,
});

/**
 * A refusal handed to an smtp-server callback: smtp-server answers with the error's `responseCode` (and closes the
 * connection after a 421).
 */
export class SmtpReplyError extends WirelabError {
  constructor(
    message: string,
    readonly responseCode: number,
    code: string = ErrorCodes.SMTP_REFUSED,
  ) {
    super(code, message);
    this.name = 'SmtpReplyError';
  }
}

function replyError(message: string, responseCode: number, code?: string): SmtpReplyError {
  return new SmtpReplyError(message, responseCode, code);
}

/** An SMTP server (smtp-server) that delivers into the mail store. */
export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<RunningSmtpServer> {
  rejectRenamed(options);
  const o = withDefaults(SMTP_SERVER_DEFAULTS, options);
  checkPort('port', o.port);
  checkInt('maxMessageSize', o.maxMessageSize, 1, 1024 * 1024 * 1024);
  checkInt('maxConnections', o.maxConnections, 1, 100_000);
  checkInt('maxConnectionsPerAddress', o.maxConnectionsPerAddress, 1, 100_000);
  checkInt('maxRecipients', o.maxRecipients, 1, 100_000);
  checkInt('idleTimeoutMs', o.idleTimeoutMs, 1, 24 * 3600_000);
  checkInt('maxLineLength', o.maxLineLength, 512, 1024 * 1024);
  checkInt('authFailureDelayMs', o.authFailureDelayMs, 0, 60_000);
  checkInt('maxAuthFailures', o.maxAuthFailures, 1, 1000);
  checkBoolean('allowInsecureAuth', o.allowInsecureAuth);
  checkBoolean('requireAuth', o.requireAuth);
  const tracer = o.tracer ?? NOOP_TRACER;
  const store = o.store ?? (await defaultMailStore());
  const proto = o.secure ? 'smtps' : 'smtp';
  const chaos = new ChaosPolicy(o.chaos ?? {}, o.random ?? Math.random);
  const stats = { connections: 0, delivered: 0, rejected: 0 };
  checkString('hostname', o.hostname);
  const relay = o.relay ? new RelayQueue(o.relay, { name: o.hostname, store, tracer }) : null;
  const stamp = o.addReceived || relay !== null;
  const cids = new Map<string, string>();
  const failures = new Map<string, number>();
  // maxConnectionsPerAddress: sessions admitted in onConnect, and how many per client address. smtp-server calls
  // onClose for every connection, onConnect only for those still open after its early-talker pause.
  const admitted = new Map<string, string>();
  const perAddress = new Map<string, number>();
  const cidOf = (id: unknown): string => {
    const key = String(id ?? '?');
    let cid = cids.get(key);
    if (!cid) {
      cid = nextCid(proto);
      cids.set(key, cid);
    }
    return cid;
  };

  // smtp-server logs every line it reads ("C:") and writes ("S:"); these become trace events, redacted again here.
  const log =
    (level: string) =>
    (entry: { cid?: unknown; tnx?: string }, message: string, ...args: unknown[]): void => {
      if (!tracer.enabled) return;
      const text = format(message, ...args);
      const cid = cidOf(entry.cid);
      if (text.startsWith('C:')) tracer.emit(proto, cid, '>', 'command', () => oneLine(redactLine(text.slice(2).trim())));
      else if (text.startsWith('S:')) tracer.emit(proto, cid, '<', 'reply', () => oneLine(text.slice(2).trim()));
      // Its own debug lines (connection info, TLS details) only with --trace-libs; warnings and errors always.
      else if (tracer.libs || level === 'warn' || level === 'error' || level === 'fatal') tracer.emit(proto, cid, '*', level, () => oneLine(redactLine(text)));
    };
  // The bytes on the wire (pcapng): the plain socket from onConnect, the TLS socket's plaintext from onSecure.
  const masks = new Map<string, WireMask>();
  const tapped = new WeakSet<object>();
  const tap = (socket: import('node:net').Socket | undefined, session: SMTPServerSession): void => {
    if (!tracer.wire || !socket || tapped.has(socket)) return;
    tapped.add(socket);
    const key = String(session.id);
    let mask = masks.get(key);
    if (!mask) masks.set(key, (mask = lineMask()));
    tapSocket(tracer, proto, cidOf(session.id), socket, 'server', mask);
  };
  const socketOf = (session: SMTPServerSession): import('node:net').Socket | undefined => {
    for (const c of server.connections) if (c.id === session.id) return c._socket;
    return undefined;
  };
  const logger = { trace: log('trace'), debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), fatal: log('fatal') };

  const injected = (trigger: SmtpChaosTrigger, session: SMTPServerSession): Error | null => {
    const hit = chaos.check(trigger);
    if (hit === null) return null;
    stats.rejected++;
    const what = hit.abrupt ? 'abrupt disconnect (no reply)' : hit.code === 421 ? 'disconnect (421)' : String(hit.code);
    tracer.emit(proto, cidOf(session.id), '*', 'chaos', () => `${trigger}: injected ${what}`);
    if (hit.abrupt) {
      // smtp-server keeps each connection's socket as `_socket` (declared in its types); dropping it sends no reply.
      for (const c of server.connections) if (c.id === session.id) c._socket.destroy();
    }
    return replyError(`chaos: injected ${what} on ${trigger}`, hit.code);
  };

  const tlsOpts = await tlsServerOptions(o.tls ?? {});
  const server = new SMTPServer({
    secure: o.secure,
    key: tlsOpts.key,
    cert: tlsOpts.cert,
    minVersion: tlsOpts.minVersion,
    maxVersion: tlsOpts.maxVersion,
    name: o.hostname,
    // No reverse DNS of the client: it costs ~100 ms per connection and would send traffic off the loopback.
    disableReverseLookup: true,
    banner: 'wirelab ESMTP',
    size: o.maxMessageSize,
    authMethods: ['PLAIN', 'LOGIN'],
    // Secure by default: AUTH before STARTTLS gets 538 (smtp-server's check), unless a lab asks to show it in clear.
    allowInsecureAuth: o.allowInsecureAuth,
    authOptional: !o.requireAuth,
    disabledCommands: o.secure ? ['STARTTLS'] : [],
    maxClients: o.maxConnections,
    socketTimeout: o.idleTimeoutMs,
    maxCommandLength: o.maxLineLength,
    closeTimeout: 1000,
    logger: logger as never,
    onConnect(session, callback) {
      const address = session.remoteAddress;
      const n = perAddress.get(address) ?? 0;
      if (n >= o.maxConnectionsPerAddress) {
        tracer.emit(proto, cidOf(session.id), '*', 'refused', () => ({
          summary: `maxConnectionsPerAddress=${o.maxConnectionsPerAddress} reached for ${address}: 421`,
          meta: { limit: 'maxConnectionsPerAddress', peer: address },
        }));
        return callback(replyError('Too many connections from your address, try again later', 421));
      }
      perAddress.set(address, n + 1);
      admitted.set(String(session.id), address);
      stats.connections++;
      const socket = tracer.enabled ? socketOf(session) : undefined;
      tracer.emit(proto, cidOf(session.id), '*', 'accept', () => ({
        summary: `accepted ${session.remoteAddress}:${session.remotePort}`,
        ...(socket ? socketEnds(socket, 'server') : {}),
      }));
      tap(socket, session);
      callback();
    },
    onSecure(socket, session, callback) {
      tap(socket as import('node:net').Socket, session);
      callback();
    },
    onClose(session) {
      const address = admitted.get(String(session.id));
      if (address !== undefined) {
        admitted.delete(String(session.id));
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left > 0) perAddress.set(address, left);
        else perAddress.delete(address);
      }
      tracer.emit(proto, cidOf(session.id), '*', 'close', () => 'connection closed');
      cids.delete(String(session.id));
      masks.delete(String(session.id));
      failures.delete(String(session.id));
    },
    onAuth(auth: SMTPServerAuthentication, session, callback) {
      const err = injected('auth', session);
      if (err) return callback(err);
      const user = store.authenticate(auth.username ?? '', auth.password ?? '');
      if (user) return callback(null, { user: user.name });
      const n = (failures.get(String(session.id)) ?? 0) + 1;
      failures.set(String(session.id), n);
      tracer.emit(proto, cidOf(session.id), '*', 'auth-failed', () => `wrong password #${n} for ${auth.username}: slowed down`);
      // smtp-server closes the connection after it sends a 421.
      const last = n >= o.maxAuthFailures;
      if (last) tracer.emit(proto, cidOf(session.id), '*', 'limit', () => ({ summary: `maxAuthFailures=${o.maxAuthFailures} reached: 421`, meta: { limit: 'maxAuthFailures' } }));
      void sleep(authFailureDelay(o.authFailureDelayMs, n)).then(() =>
        callback(last ? replyError('Too many failed authentication attempts, closing', 421) : replyError('Invalid username or password', 535)),
      );
    },
    onMailFrom(_address, session, callback) {
      callback(injected('sender', session) ?? undefined);
    },
    onRcptTo(address, session, callback) {
      const err = injected('recipient', session);
      if (err) return callback(err);
      if (session.envelope.rcptTo.length >= o.maxRecipients) return callback(replyError('Too many recipients', 452));
      if (!store.userForAddress(address.address)) {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        if (relay && (session.user || store.userForAddress(from))) {
          tracer.emit(proto, cidOf(session.id), '*', 'relay', () => `${address.address} is not local: accepted for relay`);
          return callback();
        }
        tracer.emit(proto, cidOf(session.id), '*', 'reject', () => `unknown recipient ${address.address}: 550`);
        return callback(replyError(`No such user here: ${address.address}`, 550, ErrorCodes.MAIL_NO_SUCH_USER));
      }
      callback();
    },
    onData(stream, session, callback) {
      // Counted while it streams; nothing past maxMessageSize is kept, and what is kept goes to a spool file.
      const spool = new MessageSpool(store.spoolDir, o.maxMessageSize);
      const cid = cidOf(session.id);
      let ended = false;
      stream.on('data', (c: Buffer) => {
        const wasOver = spool.overLimit;
        if (!spool.write(c)) {
          stream.pause();
          spool.onDrain(() => stream.resume());
        }
        if (!wasOver && spool.overLimit) {
          tracer.emit(proto, cid, '*', 'limit', () => `DATA passed maxMessageSize=${o.maxMessageSize} B: reading on without keeping, 552 at the end`);
        }
      });
      // The connection went away mid-DATA (smtp-server destroys the stream): nothing was accepted, drop the spool.
      stream.on('error', () => void spool.discard());
      stream.on('close', () => {
        if (!ended) void spool.discard();
      });
      stream.on('end', () => {
        ended = true;
        void deliver();
      });
      const deliver = async (): Promise<void> => {
        let message: SpooledMessage | null;
        try {
          message = await spool.finish();
        } catch (e) {
          await spool.discard();
          return callback(replyError(`Spooling failed: ${(e as Error).message}`, 451));
        }
        if (message === null || (stream as { sizeExceeded?: boolean }).sizeExceeded) {
          stats.rejected++;
          tracer.emit(proto, cid, '*', 'reject', () => ({ summary: `${spool.bytes} B over maxMessageSize=${o.maxMessageSize}: 552`, bytes: spool.bytes }));
          await spool.discard();
          return callback(replyError(`Message exceeds maxMessageSize=${o.maxMessageSize} bytes`, 552));
        }
        const err = injected('data', session);
        if (err) {
          await spool.discard();
          return callback(err);
        }
        const rcpts = session.envelope.rcptTo.map((r) => r.address);
        const onward = rcpts.filter((r) => !store.userForAddress(r));
        const raw = stamp
          ? Buffer.concat([Buffer.from(receivedHeader({ helo: session.hostNameAppearsAs, remoteAddress: session.remoteAddress, by: o.hostname, id: cid, with: session.transmissionType, ...(rcpts.length === 1 ? { recipient: rcpts[0]! } : {}) })), message.raw])
          : message.raw;
        const users = new Set(rcpts.map((r) => store.userForAddress(r)?.name).filter((u): u is string => !!u));
        if (relay && onward.length > 0 && !relay.enqueue({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: onward, raw })) {
          await spool.discard();
          return callback(replyError('Relay queue full (maxQueued / maxQueuedBytes), try again later', 452));
        }
        // Acknowledged only once the message is on disk in every recipient's INBOX (and queued for the others).
        try {
          await Promise.all([...users].map((u) => store.append(u, 'INBOX', raw, stamp ? {} : { spoolFile: message.file })));
        } catch (e) {
          return callback(replyError(`Delivery failed: ${(e as Error).message}`, 451));
        } finally {
          await spool.discard();
        }
        stats.delivered++;
        tracer.emit(proto, cid, '*', 'delivered', () => ({ summary: `${raw.length} B delivered to ${[...users].join(', ')}`, bytes: raw.length }));
        callback(null, onward.length > 0 ? 'Queued' : 'Delivered');
      };
    },
  });
  server.on('error', (err) => tracer.emit(proto, `${proto}-server`, '*', 'error', () => err.message));

  if (!o.allowInsecureAuth) hideAuthBeforeTls(server);
  const port = await listenTcp(server.server, o.port, o.host);
  tracer.emit(proto, `${proto}-server`, '*', 'listen', () => `listening on ${o.host}:${port}`);
  return {
    proto,
    host: o.host,
    port,
    url: `${o.secure ? 'smtps' : 'smtp'}://${o.host}:${port}`,
    store,
    stats,
    relay,
    setChaos(next: SmtpChaos) {
      chaos.set(next);
    },
    close: () =>
      new Promise<void>((resolve) => {
        relay?.close();
        server.close(() => resolve());
      }),
  };
}

/**
 * smtp-server lists AUTH in its EHLO reply before STARTTLS even when it will refuse AUTH there (538): a client that
 * believes the list (Python's smtplib.login, swaks) sends the password in clear before it learns. Postfix's
 * smtpd_tls_auth_only leaves AUTH out of EHLO until TLS is up (RFC 4954 section 4: a mechanism that exposes the
 * password should not be offered on an unprotected connection); so does this, per connection of this server only.
 */
function hideAuthBeforeTls(server: SMTPServer): void {
  const connect = server.connect.bind(server);
  server.connect = (socket, socketOptions) => {
    connect(socket, socketOptions);
    const c = [...server.connections].at(-1);
    if (!c) return;
    const send = c.send.bind(c);
    c.send = (code, data, context) => send(code, code === 250 && Array.isArray(data) && !c.secure ? data.filter((line, i) => i === 0 || !/^AUTH\b/.test(line)) : data, context);
  };
}
