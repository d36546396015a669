import { EventEmitter } from 'node:events';
import { format } from 'node:util';
import nodemailer from 'nodemailer';
import { checkInt, checkPort, checkString, withDefaults } from '../../core/options.ts';
import { DEFAULT_HOST } from '../../core/server.ts';
import { tlsClientOptions } from '../../core/tls/index.ts';
import { nextCid, oneLine, redactLine, type Tracer } from '../../core/trace/index.ts';
import type { MailStore } from './store/index.ts';

/**
 * The next hop an SMTP server relays to (an MTA's smarthost): mail for recipients it does not deliver itself, from a
 * sender it does (no open relay), is queued, stamped, forwarded there, retried on 4xx and bounced to the sender on a
 * final failure (5xx, or 4xx after the last attempt).
 */
export interface SmtpRelayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Messages waiting at once; past it the end of DATA gets 452. Default 1000. */
  maxQueued?: number;
  /** Bytes of the messages waiting at once (they are held in memory); past it the end of DATA gets 452. Default 64 MiB. */
  maxQueuedBytes?: number;
  /** Attempts per message before a temporary failure becomes a bounce. Default 3. */
  maxAttempts?: number;
  /** Pause between attempts. Default 1000 ms. */
  retryDelayMs?: number;
  /** Connect / greeting / idle timeout towards the next hop. Default 10,000 ms. */
  timeoutMs?: number;
}

export const SMTP_RELAY_DEFAULTS = Object.freeze({ host: DEFAULT_HOST, maxQueued: 1000, maxQueuedBytes: 64 * 1024 * 1024, maxAttempts: 3, retryDelayMs: 1000, timeoutMs: 10_000 });

export interface RelayJob {
  /** Envelope sender ('' is the null sender of a bounce: never bounced again). */
  from: string;
  to: string[];
  raw: Buffer;
}

export interface RelayOutcome {
  job: RelayJob;
  /** Recipients the next hop accepted, and those bounced with the reply that refused them. */
  accepted: string[];
  bounced: Array<{ recipient: string; reply: string; code: number }>;
  attempts: number;
}

/** The trace line of a `Received:` header (RFC 5321 4.4): who handed the message over, to whom, how, when. */
export function receivedHeader(p: { helo: string; remoteAddress: string; by: string; id: string; with: string; recipient?: string; date?: Date }): string {
  const forPart = p.recipient ? `\r\n\tfor <${p.recipient}>` : '';
  return `Received: from ${p.helo} ([${p.remoteAddress}])\r\n\tby ${p.by} with ${p.with} id ${p.id}${forPart};\r\n\t${(p.date ?? new Date()).toUTCString()}\r\n`;
}

/** A delivery status notification (RFC 3464) for `failed` recipients, with the original headers. */
export function bounceMessage(by: string, job: RelayJob, failed: RelayOutcome['bounced']): Buffer {
  const boundary = `wirelab-dsn-${Date.now().toString(36)}`;
  const end = job.raw.indexOf('\r\n\r\n');
  const headers = (end >= 0 ? job.raw.subarray(0, end) : job.raw).toString('utf8');
  const perRecipient = failed
    .map((f) => `Final-Recipient: rfc822; ${f.recipient}\r\nAction: failed\r\nStatus: ${f.code >= 500 ? '5' : '4'}.0.0\r\nDiagnostic-Code: smtp; ${oneLine(f.reply)}\r\n`)
    .join('\r\n');
  return Buffer.from(
    [
      `From: Mail Delivery System <MAILER-DAEMON@${by}>`,
      `To: <${job.from}>`,
      'Subject: Undelivered Mail Returned to Sender',
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}@${by}>`,
      'Auto-Submitted: auto-replied',
      'MIME-Version: 1.0',
      `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      `This is the mail system at ${by}. Your message could not be delivered to:`,
      ...failed.map((f) => `  <${f.recipient}>: ${oneLine(f.reply)}`),
      '',
      `--${boundary}`,
      'Content-Type: message/delivery-status',
      '',
      `Reporting-MTA: dns; ${by}`,
      '',
      perRecipient,
      `--${boundary}`,
      'Content-Type: text/rfc822-headers',
      '',
      headers,
      '',
      `--${boundary}--`,
      '',
    ].join('\r\n'),
  );
}

interface SendError extends Error {
  responseCode?: number;
  response?: string;
  rejected?: string[];
  rejectedErrors?: SendError[];
  recipient?: string;
}

/**
 * The relay queue of one SMTP server: one message at a time towards the next hop (a queue, not a pool: enough for a
 * playground, and the order of the trace stays readable). Emits 'done' (RelayOutcome) once a message left the queue.
 */
export class RelayQueue extends EventEmitter {
  readonly options: Required<SmtpRelayOptions>;
  readonly stats = { queued: 0, relayed: 0, bounced: 0, retries: 0 };
  readonly #jobs: RelayJob[] = [];
  readonly #transport: ReturnType<typeof nodemailer.createTransport> | Promise<ReturnType<typeof nodemailer.createTransport>>;
  #running = false;
  #inFlight = 0;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #queuedBytes = 0;
  readonly #cid = nextCid('smtp-relay');

  constructor(
    options: SmtpRelayOptions,
    readonly host: { name: string; store: MailStore; tracer: Tracer },
  ) {
    super();
    const o = withDefaults(SMTP_RELAY_DEFAULTS, options);
    checkString('relay.host', o.host);
    checkPort('relay.port', o.port);
    checkInt('relay.maxQueued', o.maxQueued, 1, 1_000_000);
    checkInt('relay.maxQueuedBytes', o.maxQueuedBytes, 1, 16 * 1024 * 1024 * 1024);
    checkInt('relay.maxAttempts', o.maxAttempts, 1, 100);
    checkInt('relay.retryDelayMs', o.retryDelayMs, 0, 3600_000);
    checkInt('relay.timeoutMs', o.timeoutMs, 1, 3600_000);
    this.options = o;
    const tracer = host.tracer;
    const cid = this.#cid;
    const log =
      (level: string) =>
      (entry: { tnx?: string }, message: string, ...args: unknown[]): void => {
        if (!tracer.enabled) return;
        const text = format(message, ...args);
        if (entry?.tnx === 'client') tracer.emit('smtp', cid, '>', 'command', () => oneLine(redactLine(text.trim())));
        else if (entry?.tnx === 'server') tracer.emit('smtp', cid, '<', 'reply', () => oneLine(text.trim()));
        else tracer.emit('smtp', cid, '*', level, () => oneLine(redactLine(text)));
      };
    const logger = { trace: log('trace'), debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), fatal: log('fatal') };
    // Opportunistic STARTTLS between MTAs (used when offered, trusting the local CA), as MTAs do by default.
    this.#transport = tlsClientOptions({}).then((tls) => {
      const t = nodemailer.createTransport({
        host: o.host,
        port: o.port,
        secure: false,
        requireTLS: false,
        tls,
        name: host.name,
        connectionTimeout: o.timeoutMs,
        greetingTimeout: o.timeoutMs,
        socketTimeout: o.timeoutMs,
        logger: logger as never,
        debug: tracer.enabled,
      });
      t.on('error', (err: Error) => tracer.emit('smtp', cid, '*', 'error', () => err.message));
      return t;
    });
    void Promise.resolve(this.#transport).catch(() => undefined);
  }

  get size(): number {
    return this.#jobs.length + this.#inFlight;
  }

  /** Queues a message; false when the queue is full (the caller answers 452). */
  enqueue(job: RelayJob): boolean {
    if (this.#closed || this.size >= this.options.maxQueued || this.#queuedBytes + job.raw.length > this.options.maxQueuedBytes) {
      this.host.tracer.emit('smtp', this.#cid, '*', 'limit', () => ({
        summary: `relay queue full (maxQueued=${this.options.maxQueued}, maxQueuedBytes=${this.options.maxQueuedBytes}): 452`,
        meta: { limit: this.size >= this.options.maxQueued ? 'maxQueued' : 'maxQueuedBytes' },
      }));
      return false;
    }
    this.#queuedBytes += job.raw.length;
    this.#jobs.push(job);
    this.stats.queued++;
    this.host.tracer.emit('smtp', this.#cid, '*', 'queued', () => `queued for ${job.to.join(', ')} via ${this.options.host}:${this.options.port} (${this.size} waiting)`);
    void this.#drain();
    return true;
  }

  /** Resolves once the queue is empty. */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.size > 0) return;
        this.off('done', check);
        resolve();
      };
      this.on('done', check);
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#wake?.();
    void Promise.resolve(this.#transport).then((t) => t.close(), () => undefined);
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let job = this.#jobs.shift(); job && !this.#closed; job = this.#jobs.shift()) {
        this.#inFlight = 1;
        const outcome = await this.#deliver(job);
        if (outcome.bounced.length > 0 && !this.#closed) await this.#bounce(job, outcome.bounced);
        this.#queuedBytes -= job.raw.length;
        this.#inFlight = 0;
        this.emit('done', outcome);
      }
    } finally {
      this.#running = false;
      this.#inFlight = 0;
      // Closed with messages still waiting: they are dropped (the queue lives in memory only).
      for (const job of this.#jobs.splice(0)) this.#queuedBytes -= job.raw.length;
    }
  }

  async #deliver(job: RelayJob): Promise<RelayOutcome> {
    const tracer = this.host.tracer;
    for (let attempt = 1; ; attempt++) {
      try {
        const transport = await this.#transport;
        const info = await transport.sendMail({ envelope: { from: job.from, to: job.to }, raw: job.raw });
        const rejected: string[] = (info.rejected ?? []).map(String);
        const errors = ((info as { rejectedErrors?: SendError[] }).rejectedErrors ?? []) as SendError[];
        const bounced = rejected.map((r, i) => ({ recipient: r, reply: errors[i]?.response ?? 'refused', code: errors[i]?.responseCode ?? 550 }));
        this.stats.relayed += job.to.length - rejected.length > 0 ? 1 : 0;
        tracer.emit('smtp', this.#cid, '*', 'relayed', () => `next hop accepted ${(info.accepted ?? []).join(', ') || 'nobody'}: ${oneLine(String(info.response ?? ''))}`);
        return { job, accepted: (info.accepted ?? []).map(String), bounced, attempts: attempt };
      } catch (e) {
        const err = e as SendError;
        const code = err.responseCode ?? 0;
        const reply = err.response ?? err.message;
        // 5xx is final; a temporary failure (4xx, no connection) is retried until the last attempt.
        if (code >= 500 || attempt >= this.options.maxAttempts || this.#closed) {
          tracer.emit('smtp', this.#cid, '*', 'failed', () => `final failure after ${attempt} attempt(s): ${oneLine(reply)}`);
          const perRecipient = err.rejectedErrors?.length ? err.rejectedErrors : undefined;
          const bounced = perRecipient
            ? perRecipient.map((r) => ({ recipient: r.recipient ?? job.to[0]!, reply: r.response ?? r.message, code: r.responseCode ?? code }))
            : job.to.map((recipient) => ({ recipient, reply, code: code || 451 }));
          return { job, accepted: [], bounced, attempts: attempt };
        }
        this.stats.retries++;
        tracer.emit('smtp', this.#cid, '*', 'deferred', () => `attempt ${attempt} failed (${oneLine(reply)}): retrying in ${this.options.retryDelayMs} ms`);
        await new Promise<void>((r) => {
          this.#wake = r;
          this.#timer = setTimeout(r, this.options.retryDelayMs);
        });
        this.#wake = undefined;
        if (this.#closed) {
          tracer.emit('smtp', this.#cid, '*', 'dropped', () => 'the server closed while the message waited for a retry: dropped (the queue is in memory only)');
          return { job, accepted: [], bounced: [], attempts: attempt };
        }
      }
    }
  }

  /** The DSN goes to the sender's mailbox here; a null sender (a bounce itself) or a foreign one is never bounced to. */
  async #bounce(job: RelayJob, failed: RelayOutcome['bounced']): Promise<void> {
    const tracer = this.host.tracer;
    const user = job.from ? this.host.store.userForAddress(job.from) : null;
    if (!user) {
      tracer.emit('smtp', this.#cid, '*', 'bounce-dropped', () => `no local mailbox for sender <${job.from}>: the bounce is dropped`);
      return;
    }
    try {
      await this.host.store.append(user.name, 'INBOX', bounceMessage(this.host.name, job, failed));
      this.stats.bounced++;
      tracer.emit('smtp', this.#cid, '*', 'bounced', () => `DSN for ${failed.map((f) => f.recipient).join(', ')} delivered to ${user.name}'s INBOX`);
    } catch (e) {
      tracer.emit('smtp', this.#cid, '*', 'error', () => `bounce to ${user.name} failed: ${(e as Error).message}`);
    }
  }
}
