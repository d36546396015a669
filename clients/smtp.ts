import nodemailer from 'nodemailer';
import { format } from 'node:util';
import { checkBoolean, checkInt, checkPort, checkString, withDefaults } from '../core/options.ts';
import { DEFAULT_HOST } from '../core/server.ts';
import { tlsClientOptions, type TlsSettings } from '../core/tls/index.ts';
import { addressOf, endsOf, NOOP_TRACER, nextCid, oneLine, redactLine, type Tracer } from '../core/trace/index.ts';
import { sleep } from '../core/time.ts';

export interface SmtpClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Implicit TLS (SMTPS, port 465). Default false. */
  secure?: boolean;
  /**
   * Insist on STARTTLS on a plain port: fail when the server does not offer it rather than send the message and any
   * password in clear. Default true (false when `ignoreTls` is set).
   */
  requireTls?: boolean;
  /** Never STARTTLS even if offered (to show the clear-text conversation; the server must allow it). Default false. */
  ignoreTls?: boolean;
  auth?: { user: string; pass: string };
  tls?: TlsSettings;
  /** Give up connecting / waiting for the greeting after this long. Default 10,000 ms. */
  timeoutMs?: number;
  tracer?: Tracer;
}

export interface MailToSend {
  from: string;
  to: string | string[];
  subject?: string;
  text?: string;
  html?: string;
  /** A whole RFC 5322 message instead of the fields above. */
  raw?: string | Buffer;
}

export interface SentInfo {
  messageId: string;
  accepted: string[];
  rejected: string[];
  response: string;
}

/** What nodemailer puts in a log entry: its connection number, what the line is, and a connection's ends. */
interface NodemailerLogEntry {
  sid?: unknown;
  tnx?: string;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}

/** Every default of SmtpClientOptions (`requireTls` defaults to `!ignoreTls`: STARTTLS or fail). */
export const SMTP_CLIENT_DEFAULTS = Object.freeze({ host: DEFAULT_HOST, secure: false, ignoreTls: false, timeoutMs: 10_000 });

/** A nodemailer transport for one of our SMTP servers (or any other), trusting the local CA, traced as `smtpc`. */
export async function createSmtpClient(options: SmtpClientOptions) {
  checkPort('port', options.port);
  const o = withDefaults(SMTP_CLIENT_DEFAULTS, options);
  checkString('host', o.host);
  checkBoolean('secure', o.secure);
  checkBoolean('ignoreTls', o.ignoreTls);
  if (o.requireTls !== undefined) checkBoolean('requireTls', o.requireTls);
  checkInt('timeoutMs', o.timeoutMs, 1, 3600_000);
  const tracer = options.tracer ?? NOOP_TRACER;
  const cid = nextCid('smtpc');
  // One id per TCP connection: nodemailer numbers its connections (`sid`); the first keeps the client's own id.
  const cids = new Map<string, string>();
  const cidOf = (sid: unknown): string => {
    if (sid === undefined) return cid;
    let c = cids.get(String(sid));
    if (!c) {
      c = cids.size === 0 ? cid : nextCid('smtpc');
      if (cids.size >= 1000) cids.clear();
      cids.set(String(sid), c);
    }
    return c;
  };
  const log =
    (level: string) =>
    (entry: NodemailerLogEntry, message: string, ...args: unknown[]): void => {
      if (!tracer.enabled) return;
      const text = format(message, ...args);
      const c = cidOf(entry?.sid);
      // nodemailer tags what it writes `tnx: 'client'` and what it reads `tnx: 'server'`.
      if (entry?.tnx === 'client') tracer.emit('smtp', c, '>', 'command', () => oneLine(redactLine(text.trim())));
      else if (entry?.tnx === 'server') tracer.emit('smtp', c, '<', 'reply', () => oneLine(text.trim()));
      else if (entry?.tnx === 'network' && entry.localPort !== undefined) {
        // "Connection established": the TCP ends, so this client's events pair with the server's.
        const local = addressOf(entry.localAddress, entry.localPort);
        const remote = addressOf(entry.remoteAddress, entry.remotePort);
        tracer.emit('smtp', c, '*', 'connected', () => ({ summary: oneLine(text), ...(local && remote ? endsOf('tcp', 'client', local, remote) : {}) }));
      }
      // nodemailer's own debug lines only with --trace-libs; warnings and errors always.
      else if (tracer.libs || level === 'warn' || level === 'error' || level === 'fatal') tracer.emit('smtp', c, '*', level, () => oneLine(redactLine(text)));
    };
  const logger = { trace: log('trace'), debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), fatal: log('fatal') };
  const timeout = o.timeoutMs;
  const transport = nodemailer.createTransport({
    host: o.host,
    port: options.port,
    secure: o.secure,
    requireTLS: o.requireTls ?? !o.ignoreTls,
    ignoreTLS: o.ignoreTls,
    ...(options.auth ? { auth: options.auth } : {}),
    tls: await tlsClientOptions(options.tls ?? {}),
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    name: 'client.wirelab.test',
    logger: logger as never,
    debug: tracer.enabled,
  });
  // Send errors reach the caller through sendMail; a pooled transport also emits them (unhandled, they would end the process).
  transport.on('error', (err: Error) => tracer.emit('smtp', cid, '*', 'error', () => err.message));
  return {
    cid,
    async send(mail: MailToSend): Promise<SentInfo> {
      const info = await transport.sendMail(
        mail.raw !== undefined
          ? { envelope: { from: mail.from, to: mail.to }, raw: mail.raw }
          : { from: mail.from, to: mail.to, subject: mail.subject ?? '', text: mail.text ?? '', ...(mail.html ? { html: mail.html } : {}) },
      );
      return {
        messageId: String(info.messageId ?? ''),
        accepted: (info.accepted ?? []).map(String),
        rejected: (info.rejected ?? []).map(String),
        response: String(info.response ?? ''),
      };
    },
    /** Connects, greets, (STARTTLS, AUTH) and disconnects: true when the server accepted all of it. */
    verify: (): Promise<boolean> => transport.verify().then(() => true),
    close: (): void => transport.close(),
  };
}

export type SmtpClient = Awaited<ReturnType<typeof createSmtpClient>>;

export interface SendAttempt {
  /** The SMTP reply code of a failed attempt, or 250 for the one that was accepted. */
  code: number;
  message: string;
}

export interface RetryResult {
  delivered: boolean;
  /** True when a 5xx ended it: a real MTA would now send a bounce (a DSN) to the sender. */
  bounced: boolean;
  attempts: SendAttempt[];
}

/**
 * What a mail transfer agent does with replies (RFC 5321 4.2.1, 4.5.4.1): a 4xx is transient, so the message is
 * queued and retried after `backoffMs` (doubling), and so is a connection lost without a reply (code 0); a 5xx is
 * permanent, so it bounces at once.
 */
export async function sendWithRetry(client: SmtpClient, mail: MailToSend, options: { maxAttempts?: number; backoffMs?: number } = {}): Promise<RetryResult> {
  const maxAttempts = options.maxAttempts ?? 5;
  let wait = options.backoffMs ?? 20;
  const attempts: SendAttempt[] = [];
  for (let i = 0; i < maxAttempts; i++) {
    try {
      const info = await client.send(mail);
      attempts.push({ code: Number(/^\d{3}/.exec(info.response)?.[0] ?? 250), message: info.response });
      return { delivered: true, bounced: false, attempts };
    } catch (err) {
      const code = Number((err as { responseCode?: number }).responseCode ?? 0);
      attempts.push({ code, message: (err as Error).message });
      // 5xx: permanent. 4xx and a connection lost without a reply (no code): try again later.
      if (code >= 500 || (code !== 0 && code < 400)) return { delivered: false, bounced: code >= 500, attempts };
      await sleep(wait);
      wait *= 2;
    }
  }
  return { delivered: false, bounced: false, attempts };
}
