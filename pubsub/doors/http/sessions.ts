import { createHash } from 'node:crypto';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import { headerValue, type Ctx } from '../../../servers/http/index.ts';
import type { Broker, ConnectInfo, Credentials, Session } from '../../broker/types.ts';

/**
 * `Authorization: Basic` (user:password) or `Bearer` (a broker token) as the broker's credentials; none: anonymous
 * (the broker decides whether that is allowed). Anything else is a 401.
 */
export function credentialsOf(ctx: Ctx): Credentials {
  const h = headerValue(ctx.req, 'authorization');
  if (h === undefined || h === '') return undefined;
  const sp = h.indexOf(' ');
  const scheme = (sp === -1 ? h : h.slice(0, sp)).toLowerCase();
  const value = sp === -1 ? '' : h.slice(sp + 1).trim();
  if (scheme === 'bearer' && value) return { token: value };
  if (scheme === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  throw new PubsubError(ErrorCodes.PUBSUB_AUTH, 'Authorization must be "Basic <base64 user:password>" or "Bearer <token>"');
}

/** A key for the credentials a request carries (a hash: the secret itself is never kept as a map key). */
export function authKey(ctx: Ctx): string {
  const h = headerValue(ctx.req, 'authorization') ?? '';
  return h === '' ? 'anonymous' : createHash('sha256').update(h).digest('base64url');
}

export function peerOf(ctx: Ctx): string {
  const s = ctx.req.socket;
  return `${s?.remoteAddress ?? '?'}:${s?.remotePort ?? 0}`;
}

interface Kept {
  session: Promise<Session>;
  usedAt: number;
  busy: number;
}

/**
 * Broker sessions for requests that do not hold one open (publish, poll, acks, admin): one per credentials and client
 * address, kept `idleMs` after its last use (so a publisher pays the password hash once, and the broker's per-session
 * rate limit applies to it), at most `max` (the least recently used idle one is closed for a new one).
 */
export class SessionCache {
  readonly #kept = new Map<string, Kept>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly broker: Broker,
    readonly tls: boolean,
    readonly max: number,
    readonly idleMs: number,
    readonly tracer: Tracer,
  ) {}

  /** A new session, not kept (an SSE stream's, closed with the stream). */
  connect(ctx: Ctx): Promise<Session> {
    const info: ConnectInfo = { door: 'http', peer: peerOf(ctx), tls: this.tls };
    const credentials = credentialsOf(ctx);
    if (credentials) info.credentials = credentials;
    return this.broker.connect(info);
  }

  /** Runs `fn` with the kept session for this request's credentials and address. */
  async use<T>(ctx: Ctx, fn: (session: Session) => Promise<T> | T): Promise<T> {
    const key = `${authKey(ctx)} ${ctx.req.socket?.remoteAddress ?? '?'}`;
    let kept = this.#kept.get(key);
    if (!kept) {
      this.#evict();
      const session = this.connect(ctx);
      kept = { session, usedAt: performance.now(), busy: 0 };
      this.#kept.set(key, kept);
      const k = kept;
      session.then(
        (s) => s.onClosed(() => this.#kept.get(key) === k && this.#kept.delete(key)),
        () => this.#kept.get(key) === k && this.#kept.delete(key),
      );
      this.#timer ??= setInterval(() => this.#sweep(), Math.max(1000, Math.min(this.idleMs, 30_000)));
      this.#timer.unref();
    }
    kept.busy++;
    try {
      return await fn(await kept.session);
    } finally {
      kept.busy--;
      kept.usedAt = performance.now();
    }
  }

  get size(): number {
    return this.#kept.size;
  }

  #evict(): void {
    if (this.#kept.size < this.max) return;
    for (const [key, k] of this.#kept) {
      if (k.busy > 0) continue;
      this.#drop(key, k, 'maxSessions');
      if (this.#kept.size < this.max) return;
    }
    throw new PubsubError(ErrorCodes.PUBSUB_LIMIT, `maxSessions=${this.max} sessions in use`, { limit: 'maxSessions' });
  }

  #sweep(): void {
    const now = performance.now();
    for (const [key, k] of this.#kept) if (k.busy === 0 && now - k.usedAt > this.idleMs) this.#drop(key, k, 'idle');
  }

  #drop(key: string, k: Kept, why: string): void {
    this.#kept.delete(key);
    this.tracer.emit('pubsub-http', 'sessions', '*', 'session-close', () => `kept session closed (${why})`);
    k.session.then((s) => s.close(why)).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    const all = [...this.#kept.values()];
    this.#kept.clear();
    await Promise.all(all.map((k) => k.session.then((s) => s.close('door closing')).catch(() => {})));
  }
}

/**
 * Delivery ids handed out over SSE or long polling, and the session that must ack them (POST /acks). Only the same
 * credentials may settle a delivery. Bounded: past `max` the oldest are forgotten (their messages are redelivered after
 * ackWaitMs, as if the ack was lost).
 */
export class PendingAcks {
  readonly #pending = new Map<string, { session: Session; auth: string }>();
  constructor(readonly max: number) {}

  add(deliveryId: string, session: Session, auth: string): void {
    this.#pending.set(deliveryId, { session, auth });
    if (this.#pending.size > this.max) this.#pending.delete(this.#pending.keys().next().value as string);
  }

  /** The session for `deliveryId` if `auth` may settle it; forgets it when `settle`. */
  take(deliveryId: string, auth: string, settle: boolean): Session | undefined {
    const p = this.#pending.get(deliveryId);
    if (!p || p.auth !== auth) return undefined;
    if (settle) this.#pending.delete(deliveryId);
    return p.session;
  }

  /** Forgets every delivery of a session that ended. */
  forget(session: Session): void {
    for (const [id, p] of this.#pending) if (p.session === session) this.#pending.delete(id);
  }

  get size(): number {
    return this.#pending.size;
  }
}
