/**
 * The native pub/sub client (README "The native protocol"): `connectPubsub({ url })` over ws://, wss://, tcp:// or
 * tls://, publish with the ack the producer asked for, subscribe as an async iterator or with a callback, and
 * reconnect with backoff that resumes each fan-out subscription from the offset after the last one it saw (no gap, no
 * duplicate). Imports only protocols/ and core/ (layers).
 */
import { ErrorCodes, PubsubError, WirelabError } from '../core/errors.ts';
import { NOOP_TRACER, nextCid, preview, type Tracer } from '../core/trace/index.ts';
import {
  PUBSUB_PROTOCOL_VERSION,
  type ClientMessage,
  type From,
  type MsgMessage,
  type PubMessage,
  type ServerMessage,
  type SubMessage,
} from '../protocols/pubsub.ts';
import { resolveOptions, type PubsubClientOptions, type PubsubReconnectOptions } from './pubsub/options.ts';
import { Received, type ReceivedMessage } from './pubsub/received.ts';
import { openTransport, schemeOf, type Transport } from './pubsub/transport.ts';

export { PUBSUB_CLIENT_DEFAULTS, type PubsubClientOptions, type PubsubReconnectOptions } from './pubsub/options.ts';

/** key, partition, headers, msgId, ttlMs and acks of a `pub` (acks 0 resolves with undefined once written: no puback comes). */
export type PublishOptions = Omit<PubMessage, 'type' | 'id' | 'topic' | 'payload'>;

export interface Puback {
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  duplicate: boolean;
}

export type SubscribeOptions = Omit<SubMessage, 'type' | 'id' | 'pattern'> & {
  /** Called for each message instead of queueing it for the iterator. */
  onMessage?: (m: ReceivedMessage) => void;
};

export type { ReceivedMessage } from './pubsub/received.ts';

export interface PubsubSubscription extends AsyncIterable<ReceivedMessage> {
  readonly id: string;
  readonly pattern: string;
  /** Messages received (duplicates of a resumed subscription dropped, counted in `skipped`). */
  readonly received: number;
  readonly skipped: number;
  /** The next message (rejects once the subscription has ended). */
  next(): Promise<ReceivedMessage>;
  close(): Promise<void>;
}

interface SubState {
  id: string;
  msg: SubMessage;
  onMessage?: (m: ReceivedMessage) => void;
  /** Last offset seen per "topic/partition" (resume point of a fan-out subscription). */
  seen: Map<string, number>;
  /** When the subscription was first made (resume point of a fan-out subscription that has seen nothing yet). */
  since: number;
  queue: ReceivedMessage[];
  waiters: { resolve: (m: ReceivedMessage) => void; reject: (e: Error) => void }[];
  ended?: Error;
  received: number;
  skipped: number;
  pending?: { resolve: () => void; reject: (e: Error) => void };
}

interface PendingPub {
  msg: Extract<ClientMessage, { type: 'pub' }>;
  resolve: (r: Puback | undefined) => void;
  reject: (e: Error) => void;
  sent: boolean;
}

export class PubsubClient {
  readonly cid: string;
  /** The session id of the current connection (from welcome). */
  session = '';
  reconnects = 0;
  readonly closed: Promise<{ reason: string }>;
  readonly #o: ReturnType<typeof resolveOptions>;
  readonly #url: URL;
  readonly #tracer: Tracer;
  #transport: Transport | undefined;
  #ready = false;
  #closing = false;
  #nextPub = 1;
  #nextSub = 1;
  #nextPing = 1;
  readonly #pubs = new Map<number, PendingPub>();
  readonly #subs = new Map<string, SubState>();
  readonly #pings = new Map<number, (rtt: number) => void>();
  #welcome?: { resolve: () => void; reject: (e: Error) => void };
  #lastError: PubsubError | undefined;
  /** The version this client says hello with: the newest, or 1 once a server refused the newest (an older wirelab). */
  #version = PUBSUB_PROTOCOL_VERSION;
  /** The version the server's welcome named. */
  version = 0;
  #resolveClosed!: (v: { reason: string }) => void;

  private constructor(o: ReturnType<typeof resolveOptions>) {
    this.#o = o;
    this.#url = new URL(o.url);
    schemeOf(this.#url);
    this.#tracer = o.tracer ?? NOOP_TRACER;
    this.cid = nextCid('pubsub-client');
    this.closed = new Promise((r) => (this.#resolveClosed = r));
  }

  static async connect(options: PubsubClientOptions): Promise<PubsubClient> {
    const c = new PubsubClient(resolveOptions(options));
    try {
      await c.#connect();
    } catch (err) {
      // A server older than version 2 refuses the hello: say hello again with version 1 (JSON-header frames only).
      if (!(err instanceof PubsubError && err.code === ErrorCodes.PUBSUB_INVALID && /protocol version \d+ is not supported/.test(err.message))) throw err;
      c.#version = 1;
      c.#lastError = undefined;
      c.#transport = undefined; // its close (on its way) is then not this client's end
      await c.#connect();
    }
    return c;
  }

  #emit(dir: '>' | '<' | '*', kind: string, summary: () => string): void {
    this.#tracer.emit('pubsub', this.cid, dir, kind, () => summary());
  }

  /** #send as a value, made once: every received message's ack methods use it (no closures per message). */
  readonly #sendBound = (m: ClientMessage): void => void this.#send(m);

  #send(m: ClientMessage): boolean {
    this.#emit('>', m.type, () => (m.type === 'hello' ? `hello v${m.version}${m.user ? ` user=${m.user} password=***` : ''}${m.token ? ' token=***' : ''}` : m.type === 'pub' ? `pub #${m.id} ${m.topic} ${preview(m.payload)}` : JSON.stringify(m).slice(0, 160)));
    return this.#transport?.send(m) ?? false;
  }

  async #connect(): Promise<void> {
    const transport = await openTransport(this.#url, { tls: this.#o.tls ?? {}, maxFrameBytes: this.#o.maxFrameBytes, timeoutMs: this.#o.timeoutMs }, {
      message: (p) => {
        if (!p.ok) {
          this.#emit('<', 'bad-frame', () => p.problem);
          this.#transport?.close();
          return;
        }
        this.#onMessage(p.message);
      },
      closed: (why) => this.#onTransportClosed(transport, why),
      drain: () => undefined,
    });
    this.#transport = transport;
    const welcomed = new Promise<void>((resolve, reject) => (this.#welcome = { resolve, reject }));
    const timer = setTimeout(() => this.#welcome?.reject(new WirelabError(ErrorCodes.TIMEOUT, `no welcome within ${this.#o.timeoutMs} ms`)), this.#o.timeoutMs);
    this.#send({
      type: 'hello',
      version: this.#version,
      ...(this.#o.clientId ? { clientId: this.#o.clientId } : {}),
      ...(this.#o.token ? { token: this.#o.token } : this.#o.user ? { user: this.#o.user, password: this.#o.password ?? '' } : {}),
    });
    try {
      await welcomed;
    } catch (err) {
      transport.close();
      throw err;
    } finally {
      clearTimeout(timer);
      this.#welcome = undefined;
    }
    this.#ready = true;
    // Resubscribe (after a reconnect), then send what waited for the connection.
    for (const s of this.#subs.values()) this.#send(this.#resumeMessage(s));
    for (const p of this.#pubs.values()) if (!p.sent) this.#sendPub(p);
  }

  /** A fan-out subscription resumes after the last offset it saw (or from when it was made); a group resumes from its committed offset. */
  #resumeMessage(s: SubState): SubMessage {
    if (s.msg.group !== undefined || this.reconnects === 0) return s.msg;
    const from: From = s.seen.size > 0 ? { offset: Math.min(...s.seen.values()) + 1 } : { time: s.since };
    if (s.seen.size === 1) {
      const [key] = s.seen.keys();
      const partition = Number(key!.slice(key!.lastIndexOf('/') + 1));
      (from as { partition?: number }).partition = partition;
    }
    return s.msg.from === 'earliest' && s.seen.size === 0 ? s.msg : { ...s.msg, from };
  }

  #onMessage(m: ServerMessage): void {
    this.#emit('<', m.type, () => (m.type === 'msg' ? `msg ${m.sub} ${m.topic}[${m.partition}]@${m.offset} ${preview(m.payload)}` : JSON.stringify(m).slice(0, 160)));
    switch (m.type) {
      case 'welcome':
        this.session = m.session;
        this.version = m.version;
        this.#transport?.negotiated(m.version);
        return this.#welcome?.resolve();
      case 'puback': {
        const p = this.#pubs.get(m.id);
        if (!p) return;
        this.#pubs.delete(m.id);
        return p.resolve({ topic: m.topic, partition: m.partition, offset: m.offset, ts: m.ts, duplicate: m.duplicate });
      }
      case 'subscribed': {
        const s = this.#subs.get(m.id);
        s?.pending?.resolve();
        if (s) delete s.pending;
        return;
      }
      case 'msg':
        return this.#onMsg(m);
      case 'error': {
        const err = new PubsubError(m.code, m.message, m.limit ? { limit: m.limit } : {});
        if (typeof m.id === 'number' && this.#pubs.has(m.id)) {
          const p = this.#pubs.get(m.id)!;
          this.#pubs.delete(m.id);
          return p.reject(err);
        }
        if (typeof m.id === 'string' && this.#subs.has(m.id)) {
          const s = this.#subs.get(m.id)!;
          this.#subs.delete(m.id);
          if (s.pending) s.pending.reject(err);
          return this.#endSub(s, err);
        }
        this.#lastError = err;
        return this.#welcome?.reject(err);
      }
      case 'closed':
        this.#lastError ??= new PubsubError(ErrorCodes.CLOSED, `the broker closed the session: ${m.reason}`);
        return;
      case 'pong': {
        const f = m.id === undefined ? undefined : this.#pings.get(m.id);
        if (f) {
          this.#pings.delete(m.id!);
          f(performance.now());
        }
        return;
      }
    }
  }

  #onMsg(m: MsgMessage): void {
    const s = this.#subs.get(m.sub);
    if (!s) return;
    const key = `${m.topic}/${m.partition}`;
    const last = s.seen.get(key);
    if (s.msg.group === undefined && last !== undefined && m.offset <= last) {
      s.skipped++;
      return;
    }
    if (s.msg.group === undefined) s.seen.set(key, m.offset);
    s.received++;
    const received = new Received(m, m.deliveryId === undefined ? undefined : this.#sendBound);
    if (s.onMessage) return s.onMessage(received);
    const w = s.waiters.shift();
    if (w) return w.resolve(received);
    if (s.queue.length >= this.#o.maxQueued) {
      this.#subs.delete(s.id);
      this.#send({ type: 'unsub', id: s.id });
      return this.#endSub(s, new WirelabError(ErrorCodes.QUEUE_FULL, `subscription ${s.id}: ${s.queue.length} messages unread (maxQueued)`));
    }
    s.queue.push(received);
  }

  #endSub(s: SubState, err: Error): void {
    s.ended ??= err;
    for (const w of s.waiters.splice(0)) w.reject(s.ended);
  }

  #onTransportClosed(transport: Transport, why: string): void {
    if (this.#transport !== transport) return;
    this.#transport = undefined;
    this.#ready = false;
    this.#emit('*', 'disconnected', () => why);
    const err = this.#lastError ?? new WirelabError(ErrorCodes.CLOSED, `connection lost: ${why}`);
    // Publishes in flight: their fate is unknown (retry with a msgId to publish effectively once).
    for (const [id, p] of this.#pubs) {
      if (p.sent) {
        this.#pubs.delete(id);
        p.reject(err);
      }
    }
    this.#welcome?.reject(err);
    const authFailure = this.#lastError?.code === ErrorCodes.PUBSUB_AUTH;
    if (this.#closing || !this.#o.reconnect || authFailure) return this.#finish(why);
    void this.#reconnect(why);
  }

  async #reconnect(why: string): Promise<void> {
    const r = this.#o.reconnect as Required<PubsubReconnectOptions>;
    for (let attempt = 0; attempt < r.retries && !this.#closing; attempt++) {
      const wait = Math.min(r.maxMs, r.baseMs * 2 ** attempt) * (0.8 + Math.random() * 0.4);
      await new Promise((res) => setTimeout(res, wait));
      if (this.#closing) break;
      this.reconnects++;
      this.#lastError = undefined;
      try {
        this.#emit('*', 'reconnect', () => `attempt ${attempt + 1} after ${Math.round(wait)} ms`);
        await this.#connect();
        return;
      } catch {
        // next attempt
      }
    }
    this.#finish(`${why}; reconnect gave up`);
  }

  #finish(reason: string): void {
    this.#closing = true;
    const err = this.#lastError ?? new WirelabError(ErrorCodes.CLOSED, `client closed: ${reason}`);
    for (const p of this.#pubs.values()) p.reject(err);
    this.#pubs.clear();
    for (const s of this.#subs.values()) {
      s.pending?.reject(err);
      this.#endSub(s, err);
    }
    this.#subs.clear();
    this.#resolveClosed({ reason });
  }

  #sendPub(p: PendingPub): void {
    p.sent = true;
    const writable = this.#send(p.msg);
    if (p.msg.acks === 0) {
      this.#pubs.delete(p.msg.id);
      p.resolve(undefined);
    }
    void writable;
  }

  /** Resolves with the puback (acks 0: with undefined once written). Rejects with a PubsubError from the broker. */
  publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<Puback | undefined> {
    if (this.#closing) return Promise.reject(new WirelabError(ErrorCodes.CLOSED, 'client closed'));
    if (this.#pubs.size >= this.#o.maxPendingPublishes) {
      return Promise.reject(new WirelabError(ErrorCodes.QUEUE_FULL, `${this.#pubs.size} publishes pending (maxPendingPublishes)`));
    }
    const id = this.#nextPub;
    this.#nextPub = this.#nextPub >= 0xffffffff ? 1 : this.#nextPub + 1;
    const msg = { type: 'pub' as const, id, topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, ...options };
    return new Promise((resolve, reject) => {
      const p: PendingPub = { msg, resolve, reject, sent: false };
      this.#pubs.set(id, p);
      if (this.#ready) this.#sendPub(p);
    });
  }

  /** Resolves once the broker has accepted the subscription. */
  async subscribe(pattern: string, options: SubscribeOptions = {}): Promise<PubsubSubscription> {
    if (this.#closing) throw new WirelabError(ErrorCodes.CLOSED, 'client closed');
    const { onMessage, ...rest } = options;
    const id = `s${this.#nextSub++}`;
    const s: SubState = { id, msg: { type: 'sub', id, pattern, ...rest }, seen: new Map(), since: Date.now(), queue: [], waiters: [], received: 0, skipped: 0 };
    if (onMessage) s.onMessage = onMessage;
    this.#subs.set(id, s);
    const accepted = new Promise<void>((resolve, reject) => (s.pending = { resolve, reject }));
    if (this.#ready) this.#send(s.msg);
    await accepted;
    const next = (): Promise<ReceivedMessage> => {
      const m = s.queue.shift();
      if (m) return Promise.resolve(m);
      if (s.ended) return Promise.reject(s.ended);
      return new Promise((resolve, reject) => s.waiters.push({ resolve, reject }));
    };
    const close = async (): Promise<void> => {
      if (!this.#subs.delete(id)) return;
      if (this.#ready) this.#send({ type: 'unsub', id });
      this.#endSub(s, new WirelabError(ErrorCodes.CLOSED, `subscription ${id} closed`));
    };
    return {
      id,
      pattern,
      get received() {
        return s.received;
      },
      get skipped() {
        return s.skipped;
      },
      next,
      close,
      async *[Symbol.asyncIterator]() {
        for (;;) {
          let m: ReceivedMessage;
          try {
            m = await next();
          } catch (err) {
            if (err instanceof WirelabError && err.code === ErrorCodes.CLOSED) return;
            throw err;
          }
          yield m;
        }
      },
    };
  }

  /** Round trip to the broker, in ms. */
  ping(): Promise<number> {
    const id = this.#nextPing++;
    const t0 = performance.now();
    return new Promise((resolve) => {
      this.#pings.set(id, (t) => resolve(t - t0));
      this.#send({ type: 'ping', id });
    });
  }

  /** Connected and welcomed now. */
  get connected(): boolean {
    return this.#ready;
  }

  /** Ends the connection (no reconnect); pending publishes and subscriptions end with WL_ERR_CLOSED. */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      if (this.#transport) this.#transport.close();
      else this.#finish('closed by the client');
    }
    await this.closed;
  }
}

/** Connects and says hello; resolves once welcomed. Rejects with WL_ERR_PUBSUB_AUTH for bad credentials. */
export function connectPubsub(options: PubsubClientOptions): Promise<PubsubClient> {
  return PubsubClient.connect(options);
}
