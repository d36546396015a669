import net from 'node:net';
import tls from 'node:tls';
import { Readable, Writable } from 'node:stream';
import { Client as BasicClient, type FileInfo, type FTPContext, type FTPResponse } from 'basic-ftp';
import { checkBoolean, checkInt, checkPort, withDefaults } from '../core/options.ts';
import { DEFAULT_HOST } from '../core/server.ts';
import { tlsClientOptions, type TlsSettings } from '../core/tls/index.ts';
import { NOOP_TRACER, nextCid, redactLine, socketEnds, type Tracer } from '../core/trace/index.ts';

export interface FtpClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Default 'demo' (the demo user). */
  user?: string;
  /** Default 'demo'. */
  password?: string;
  /**
   * `true`: AUTH TLS on the plain port (explicit FTPS, PROT P); 'implicit': TLS from the first byte; false: all in
   * clear (the server must allow it). Default true.
   */
  secure?: boolean | 'implicit';
  /** TLS settings; the local CA is trusted and the certificate is verified. */
  tls?: TlsSettings;
  /** Log in right after connecting. Default true. */
  login?: boolean;
  /** Control and data timeout. Default 10,000 ms. */
  timeoutMs?: number;
  tracer?: Tracer;
}

/** One data connection as this client saw it. */
export interface DataConnectionInfo {
  mode: 'passive' | 'active';
  /** Who opened the connection: `client` in passive mode, `server` in active mode. */
  openedBy: 'client' | 'server';
  /** The server's end, `address:port`. */
  server: string;
  /** Our end, `address:port`. */
  client: string;
}

export interface ActiveOptions {
  /** Send EPRT instead of PORT. Default false. */
  eprt?: boolean;
  /**
   * What our side does with the server's inbound data connection. 'refuse' stands for a firewall or a NAT box in front
   * of the client: nothing accepts the connection the server tries to open (it gets a TCP RST). Default 'accept'.
   */
  inbound?: 'accept' | 'refuse';
}

export interface ActiveResult {
  data: Buffer;
  connection?: DataConnectionInfo;
  /** The final reply to the transfer command (226, or the error). */
  final: FTPResponse;
}

const addr = (a: string | undefined, p: number | undefined): string => `${(a ?? '').replace(/^::ffff:/i, '')}:${p ?? 0}`;

/**
 * An FTP client: basic-ftp for passive mode (its verbose log goes to the Tracer as `ftp-client` events), plus a small
 * active mode of our own (PORT / EPRT and a listening data socket), which basic-ftp does not have.
 */
export class FtpClient {
  readonly cid: string;
  /** The basic-ftp client, for everything this wrapper does not cover. */
  readonly basic: BasicClient;
  /** Every data connection this client took part in, in order. */
  readonly dataConnections: DataConnectionInfo[] = [];
  readonly #tracer: Tracer;
  #secureOptions?: tls.ConnectionOptions;

  private constructor(basic: BasicClient, tracer: Tracer) {
    this.basic = basic;
    this.#tracer = tracer;
    this.cid = nextCid('ftp-client');
    this.#hookLog(basic.ftp);
    this.#hookDataSocket(basic.ftp);
  }

  static async connect(options: FtpClientOptions): Promise<FtpClient> {
    const o = withDefaults(FTP_CLIENT_DEFAULTS, options);
    checkPort('port', o.port);
    checkInt('timeoutMs', o.timeoutMs, 1, 3600_000);
    if (o.secure !== 'implicit') checkBoolean('secure', o.secure);
    const client = new FtpClient(new BasicClient(o.timeoutMs), o.tracer ?? NOOP_TRACER);
    if (o.secure) client.#secureOptions = { ...(await tlsClientOptions(o.tls ?? {})), host: o.host };
    try {
      if (o.login) {
        await client.basic.access({ host: o.host, port: o.port, user: o.user, password: o.password, secure: o.secure, secureOptions: client.#secureOptions });
      } else if (o.secure === 'implicit') {
        await client.basic.connectImplicitTLS(o.host, o.port, client.#secureOptions);
      } else {
        await client.basic.connect(o.host, o.port);
        if (o.secure) await client.basic.useTLS(client.#secureOptions);
      }
    } catch (err) {
      client.basic.close();
      throw err;
    }
    return client;
  }

  #emit(dir: '>' | '<' | '*', kind: string, summary: string): void {
    this.#tracer.emit('ftp-client', this.cid, dir, kind, () => summary);
  }

  /** basic-ftp logs commands as `> CMD` and replies as `< text`; those become trace events (PASS redacted again). */
  #hookLog(ftp: FTPContext): void {
    if (!this.#tracer.enabled) return;
    ftp.verbose = true;
    ftp.log = (message: string): void => {
      if (message.startsWith('> ')) this.#emit('>', 'command', redactLine(message.slice(2)));
      else if (message.startsWith('< ')) this.#emit('<', 'reply', message.slice(2).trim().replace(/\r?\n/g, ' | '));
      else if (message.startsWith('Connected to') && ftp.socket.remotePort !== undefined) {
        // The control connection's TCP ends, so this client's events pair with the server's.
        this.#tracer.emit('ftp-client', this.cid, '*', 'connected', () => ({ summary: message, ...socketEnds(ftp.socket, 'client') }));
      }
      // basic-ftp's own debug lines only with --trace-libs.
      else if (this.#tracer.libs) this.#emit('*', 'log', message);
    };
  }

  /** Notes every passive data socket basic-ftp opens, so a lab can show who connected to whom. */
  #hookDataSocket(ftp: FTPContext): void {
    const desc = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(ftp), 'dataSocket');
    if (!desc?.get || !desc.set) return;
    const onSocket = (s: net.Socket): void => {
      const info: DataConnectionInfo = {
        mode: 'passive',
        openedBy: 'client',
        server: addr(s.remoteAddress, s.remotePort),
        client: addr(s.localAddress, s.localPort),
      };
      this.dataConnections.push(info);
      this.#emit('*', 'data-open', `passive: client ${info.client} → server ${info.server} (we connected)`);
    };
    Object.defineProperty(ftp, 'dataSocket', {
      configurable: true,
      get: () => desc.get!.call(ftp),
      set: (s: net.Socket | undefined) => {
        desc.set!.call(ftp, s);
        if (s && s.remotePort !== undefined) onSocket(s);
      },
    });
  }

  /** Sends one command and returns the reply (an error reply rejects with basic-ftp's FTPError, which has `code`). */
  send(command: string): Promise<FTPResponse> {
    return this.basic.send(command);
  }

  /** Like send, but an error reply is returned, not thrown. */
  sendIgnoringError(command: string): Promise<FTPResponse> {
    return this.basic.sendIgnoringError(command);
  }

  list(path = ''): Promise<FileInfo[]> {
    return this.basic.list(path);
  }

  /** Downloads a file into memory (passive mode), from `startAt` (REST) when given. */
  async download(path: string, startAt = 0): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    await this.basic.downloadTo(sink, path, startAt);
    return Buffer.concat(chunks);
  }

  /** Uploads bytes (passive mode). */
  async upload(data: Buffer | string, path: string): Promise<FTPResponse> {
    return this.basic.uploadFrom(Readable.from([Buffer.from(data)]), path);
  }

  /**
   * Active mode: we listen, say where with PORT (or EPRT), send `command` (RETR, LIST, NLST or STOR), and the server
   * connects to us. `upload` is sent for STOR. With inbound 'refuse' nothing accepts the server's connection.
   */
  async active(command: string, options: ActiveOptions & { upload?: Buffer } = {}): Promise<ActiveResult> {
    const control = this.basic.ftp.socket;
    const local = (control.localAddress ?? DEFAULT_HOST).replace(/^::ffff:/i, '');
    const listener = net.createServer();
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(0, local, () => resolve());
    });
    listener.on('error', () => {});
    const port = (listener.address() as net.AddressInfo).port;
    let connection: DataConnectionInfo | undefined;
    const accepted = new Promise<net.Socket>((resolve) => {
      listener.once('connection', (s: net.Socket) => {
        s.on('error', () => {});
        listener.close();
        connection = { mode: 'active', openedBy: 'server', server: addr(s.remoteAddress, s.remotePort), client: addr(s.localAddress, s.localPort) };
        this.dataConnections.push(connection);
        this.#emit('*', 'data-open', `active: server ${connection.server} → client ${connection.client} (the server connected to us)`);
        resolve(s);
      });
    });
    try {
      const family = net.isIPv6(local) ? 2 : 1;
      await this.send(
        options.eprt ? `EPRT |${family}|${local}|${port}|` : `PORT ${local.replace(/\./g, ',')},${port >> 8},${port & 255}`,
      );
      if (options.inbound === 'refuse') {
        // The firewall in front of us: the port is closed before the server gets to it, so its SYN is answered by RST.
        await new Promise<void>((resolve) => listener.close(() => resolve()));
        this.#emit('*', 'refused', `inbound connections refused: nothing accepts on ${local}:${port}`);
      }
      const data: Buffer[] = [];
      const final = await this.basic.ftp.handle(command, (res: Error | FTPResponse, task) => {
        if (res instanceof Error) return task.reject(res);
        if (res.code === 150 || res.code === 125) {
          void accepted.then((raw) => this.#runActive(raw, options.upload, data));
          return;
        }
        if (res.code >= 200 && res.code < 300) {
          // The reply can overtake the data: settle once our side of the data connection has ended too.
          void accepted.then((s) => (s.closed ? task.resolve(res) : s.once('close', () => task.resolve(res))));
          return;
        }
        task.resolve(res);
      });
      return { data: Buffer.concat(data), connection, final: final as FTPResponse };
    } finally {
      listener.close();
    }
  }

  async #runActive(raw: net.Socket, upload: Buffer | undefined, into: Buffer[]): Promise<void> {
    let socket: net.Socket = raw;
    raw.on('error', () => {});
    if (this.#secureOptions && this.basic.ftp.hasTLS) {
      // With PROT P the client is the TLS client on the data connection even when the server opened it.
      socket = tls.connect({ ...this.#secureOptions, socket: raw, session: (this.basic.ftp.socket as tls.TLSSocket).getSession?.() });
      socket.on('error', () => {});
    }
    if (upload) {
      socket.end(upload);
      return;
    }
    socket.on('data', (c: Buffer) => into.push(c));
    socket.on('end', () => socket.destroy());
  }

  close(): void {
    this.basic.close();
  }
}

export const FTP_CLIENT_DEFAULTS = Object.freeze({ host: DEFAULT_HOST, user: 'demo', password: 'demo', secure: true as boolean | 'implicit', login: true, timeoutMs: 10_000 });

/** The DESIGN.md client seam: `connectFtp(options)` is `FtpClient.connect(options)`. */
export function connectFtp(options: FtpClientOptions): Promise<FtpClient> {
  return FtpClient.connect(options);
}
