import { ImapFlow } from 'imapflow';
import { checkBoolean, checkPort, withDefaults } from '../core/options.ts';
import { DEFAULT_HOST } from '../core/server.ts';
import { tlsClientOptions, type TlsSettings } from '../core/tls/index.ts';
import { addressOf, endsOf, NOOP_TRACER, nextCid, redactLine, type Tracer } from '../core/trace/index.ts';

export interface ImapClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Implicit TLS (IMAPS). Default false: plain, then STARTTLS before logging in (required: no STARTTLS, no login). */
  secure?: boolean;
  /** Never STARTTLS (to show the clear-text conversation; the server must allow it). Default false. */
  noStartTls?: boolean;
  auth: { user: string; pass: string };
  /** Trust settings; by default the local CA (core/tls). Pass `ca` to trust another server's certificate. */
  tls?: TlsSettings & { ca?: string };
  /** Push notifications with IDLE while nothing else runs (imapflow's autoIdle). Default false. */
  autoIdle?: boolean;
  tracer?: Tracer;
}

export const IMAP_CLIENT_DEFAULTS = Object.freeze({ host: DEFAULT_HOST, secure: false, noStartTls: false, autoIdle: false });

/** What imapflow puts in a log entry (the connection entry carries the TCP ends). */
interface ImapflowLogEntry {
  src?: string;
  msg?: string;
  address?: string;
  port?: number;
  localAddress?: string;
  localPort?: number;
}

/**
 * imapflow (pinned to 2.1.2), connected and logged in. Its log of what it sends (`src: 'c'`) and reads (`src: 's'`)
 * feeds the tracer as `imap` events of connection `imapc#N`, credentials redacted.
 */
export async function connectImap(options: ImapClientOptions): Promise<ImapFlow> {
  const o = withDefaults(IMAP_CLIENT_DEFAULTS, options);
  checkPort('port', o.port);
  for (const k of ['secure', 'noStartTls', 'autoIdle'] as const) checkBoolean(k, o[k]);
  const tracer = options.tracer ?? NOOP_TRACER;
  const cid = nextCid('imapc');
  const log = (level: string) => (entry: ImapflowLogEntry) => {
    if (!tracer.enabled || typeof entry?.msg !== 'string') return;
    const dir = entry.src === 'c' ? '>' : entry.src === 's' ? '<' : '*';
    if (dir === '*' && entry.src === 'connection' && entry.localPort !== undefined) {
      // "Established TCP connection": the TCP ends, so this client's events pair with the server's.
      const local = addressOf(entry.localAddress, entry.localPort);
      const remote = addressOf(entry.address, entry.port);
      tracer.emit('imap', cid, '*', 'connected', () => ({ summary: entry.msg!, ...(local && remote ? endsOf('tcp', 'client', local, remote) : {}) }));
      return;
    }
    // imapflow's own debug lines only with --trace-libs; warnings and errors always.
    if (dir === '*' && !tracer.libs && level !== 'warn' && level !== 'error') return;
    tracer.emit('imap', cid, dir, dir === '*' ? level : dir === '>' ? 'command' : 'response', () => redactLine(entry.msg!));
  };
  const base = await tlsClientOptions(options.tls ?? {});
  const client = new ImapFlow({
    host: o.host,
    port: o.port,
    secure: o.secure,
    // true: STARTTLS or fail, so the password never goes out in clear by accident (imapflow's default is opportunistic).
    doSTARTTLS: o.secure ? undefined : !o.noStartTls,
    auth: o.auth,
    tls: { ...base, ...(options.tls?.ca ? { ca: options.tls.ca } : {}) },
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), trace: log('trace') } as never,
    disableAutoIdle: !o.autoIdle,
    verifyOnly: false,
  } as ConstructorParameters<typeof ImapFlow>[0]);
  client.on('error', (err: Error) => tracer.emit('imap', cid, '*', 'error', () => err.message));
  await client.connect();
  return client;
}

export type { ImapFlow };
