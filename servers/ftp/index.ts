import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { closeTcpServer, SocketSet, type RunningServer } from '../../core/server.ts';
import { tlsServerOptions } from '../../core/tls/index.ts';
import { NOOP_TRACER, nextCid, socketEnds } from '../../core/trace/index.ts';
import { authCommands } from './commands/auth.ts';
import { connectionCommands } from './commands/connection.ts';
import { fileCommands } from './commands/files.ts';
import { infoCommands } from './commands/info.ts';
import { transferCommands } from './commands/transfer.ts';
import { listenLineServer, refuseTraced } from '../line/server.ts';
import { InFlightByRoot } from './quota.ts';
import { resolveFtpOptions, type FtpServerOptions, type ResolvedFtpOptions } from './options.ts';
import { AddressFailures, FtpSession, type CommandTable, type ServerContext } from './session.ts';
import { CommandChaosPolicy, FTP_CHAOS_CODES, type CommandChaos } from '../line/chaos.ts';

export { DEMO_USER, FTP_SERVER_DEFAULTS, type FtpServerOptions, type FtpUser } from './options.ts';
export { FtpSession, type CommandTable, type Handler, type State } from './session.ts';
export { Jail, PathRefused, virtualPath } from './paths.ts';
export { FtpError } from './errors.ts';

/** Every command the server knows, by verb (HELP lists these). */
export const FTP_COMMANDS: CommandTable = {
  ...authCommands,
  ...fileCommands,
  ...connectionCommands,
  ...transferCommands,
  ...infoCommands,
};

export interface RunningFtpServer extends RunningServer {
  /** The real folder the first configured user (the demo user by default) sees as `/`. */
  readonly root: string;
  /** Control connections served so far. */
  readonly stats: { connections: number; refused: number };
  /** The chaos rules in force, how often each fired. */
  readonly chaos: CommandChaosPolicy;
  setChaos(chaos: CommandChaos): void;
}

/** Text with LF line endings: downloading it in TYPE A and TYPE I gives different bytes (the ftp-commands lab). */
export const WELCOME_TEXT = 'Welcome to the wirelab FTP server.\nThis file has LF line endings.\nTYPE A sends each LF as CRLF; TYPE I sends the bytes as they are.\n';

/** Makes every user's root; an empty first root gets a small readme and a folder, so a first LIST shows something. */
async function seedRoots(o: ResolvedFtpOptions): Promise<void> {
  for (const [i, u] of o.users.entries()) {
    await mkdir(u.root!, { recursive: true });
    if (i === 0 && (await readdir(u.root!)).length === 0) {
      // 'wx' and recursive: two servers sharing a root (ftp and ftps in `wirelab up`) may seed it at the same time.
      await writeFile(join(u.root!, 'readme.txt'), WELCOME_TEXT, { flag: 'wx' }).catch(() => {});
      await mkdir(join(u.root!, 'docs'), { recursive: true });
    }
  }
  if (o.anonymous) await mkdir(join(o.rootDir, 'anonymous'), { recursive: true });
}

/**
 * An FTP server (RFC 959, 2228 / 4217 FTPS, 2428, 3659) that confines each user to its root. With `implicitTls` it is
 * an implicit FTPS server (TLS from the first byte, the port-990 convention).
 */
export async function startFtpServer(options: FtpServerOptions = {}): Promise<RunningFtpServer> {
  const o = resolveFtpOptions(options);
  const tracer = options.tracer ?? NOOP_TRACER;
  await seedRoots(o);
  const tlsOptions = o.tls ? await tlsServerOptions(o.tls) : undefined;
  const secureContext = tlsOptions ? tls.createSecureContext(tlsOptions) : undefined;
  const proto = o.implicitTls ? 'ftps' : 'ftp';
  const stats = { connections: 0, refused: 0 };
  const sockets = new SocketSet();
  let port = 0;
  const ctx: ServerContext = { o, tracer, commands: FTP_COMMANDS, secureContext, controlPort: () => port, release: (socket) => sockets.release(socket), failures: new AddressFailures(), inFlight: new InFlightByRoot(), chaos: new CommandChaosPolicy(FTP_CHAOS_CODES, options.chaos) };

  const serve = (socket: net.Socket): void => {
    const cid = nextCid('ftp');
    stats.connections++;
    tracer.emit('ftp', cid, '*', 'accept', () => ({
      summary: `control connection ${socket.remoteAddress}:${socket.remotePort} → ${socket.localAddress}:${socket.localPort}${o.implicitTls ? ' (implicit TLS)' : ''}`,
      meta: { peer: `${socket.remoteAddress}:${socket.remotePort}` },
      ...socketEnds(socket, 'server'),
    }));
    const session = new FtpSession(ctx, socket, cid);
    void session.reply(220, 'wirelab FTP server ready.');
  };

  const listener = await listenLineServer({
    sockets,
    host: o.host,
    port: o.port,
    implicitTls: o.implicitTls ? { options: tlsOptions!, keylog: true, keylogFile: o.tls ? o.tls.keylogFile : undefined } : undefined,
    limits: o,
    tracer,
    proto: 'ftp',
    serverCid: `${proto}-server`,
    // A connection past a limit gets 421 (RFC 959: service not available) and a trace event; it holds no slot.
    refuse: (socket, limit) => {
      stats.refused++;
      refuseTraced(tracer, 'ftp', `${proto}-server`, socket, limit, o[limit], limit === 'maxConnections' ? '421 Too many connections, try again later.\r\n' : '421 Too many connections from your address, try again later.\r\n', '421');
    },
    accept: serve,
  });
  const server = listener.server;
  port = listener.port;
  tracer.emit('ftp', `${proto}-server`, '*', 'listen', () => `${proto} listening on ${o.host}:${port}`);
  return {
    proto,
    host: o.host,
    port,
    url: `${proto}://${o.host}:${port}/`,
    root: o.users[0]?.root ?? join(o.rootDir, 'anonymous'),
    stats,
    chaos: ctx.chaos,
    setChaos: (c) => ctx.chaos.set(c),
    close: async () => {
      await closeTcpServer(server, sockets);
      tracer.emit('ftp', `${proto}-server`, '*', 'closed', () => `stopped listening on ${o.host}:${port}`);
    },
  };
}
