/** The chat server's state records, the stored-event decoder, the mute / ban book and the rate buckets (core.ts, rooms.ts, moderation.ts use them). */
import { TokenBucket } from '../../../pubsub/broker/rate.ts';
import type { ChatCode, ChatEvent, ServerMessage, StoredEvent } from '../protocol.ts';

const WIRE = new WeakMap<ServerMessage, string>();

/** A message's JSON, made once however many members it fans out to (the same object goes to each). */
export function wire(m: ServerMessage): string {
  let text = WIRE.get(m);
  if (text === undefined) {
    text = JSON.stringify(m);
    WIRE.set(m, text);
  }
  return text;
}

const WIRE_BYTES = new WeakMap<ServerMessage, Buffer>();

/** The same as UTF-8 bytes, for ws.send (which would otherwise encode the string once per member). */
export function wireBytes(m: ServerMessage): Buffer {
  let bytes = WIRE_BYTES.get(m);
  if (bytes === undefined) {
    bytes = Buffer.from(wire(m));
    WIRE_BYTES.set(m, bytes);
  }
  return bytes;
}

export type Transport = 'ws' | 'sse' | 'poll';

/** One client connection as a transport presents it. */
export interface ChatConn {
  readonly cid: string;
  readonly transport: Transport;
  /** The connection is TLS (a password or token is accepted on it without allowInsecureAuth). */
  readonly secure: boolean;
  /** The remote address:port (traces; the broker's auth check takes it). */
  readonly peer: string;
  send(m: ServerMessage): void;
  /** Ends the connection (WebSocket close code and reason). */
  close(code: number, reason: string): void;
}

/** What an error to a client may carry besides its code and text. */
export type ErrorExtra = { limit?: string; retryAfterMs?: number; room?: string; cid?: string };

/** How the parts of the server (rooms.ts, moderation.ts, dm.ts) answer a client: core.ts implements it. */
export interface ChatOut {
  send(client: Client, m: ServerMessage): void;
  error(client: Client, code: ChatCode, message: string, extra?: ErrorExtra): void;
  /** Counts a bad frame (closes the connection past maxBadFrames). */
  bad(client: Client): void;
}

export interface ChatStats {
  connections: number;
  rooms: number;
  messages: number;
  /** Chat messages (send) bytes of text, the byte counter a later DM lab watches. */
  messageBytes: number;
  eventsOut: number;
  typingRelayed: number;
  errors: Partial<Record<ChatCode, number>>;
  closedBadFrames: number;
}

export interface Member {
  client: Client;
  room: Room;
  /** The next offset this member still needs: everything below it has been sent. */
  next: number;
  /** Replaying from the log: live events wait in `pending`. */
  catching: boolean;
  pending: ChatEvent[];
  /** When this member's last typing-on was relayed (performance.now()). */
  typingAt: number;
}

export interface Client {
  conn: ChatConn;
  name: string | undefined;
  rooms: Map<string, Member>;
  windowStart: number;
  framesInWindow: number;
  bad: number;
  /** Refused hellos so far (maxAuthFailures); `checking` while a password is being verified. */
  authFailures: number;
  checking: boolean;
  /** Frames that arrived while `checking`: handled once the check is done. */
  waiting: string[];
  closed: boolean;
}

export interface Room {
  name: string;
  topic: string;
  owner: string | undefined;
  members: Set<Member>;
  /** Connections per online user. */
  online: Map<string, number>;
  /** Per user, the highest offset delivered to / seen by them (for authors who join later). */
  receipts: Map<string, { delivered: number; seen: number }>;
  ready: Promise<void>;
}

/** Per room and user, until when (ms since the epoch) a mute or a ban holds; expired entries go when looked at. */
export class Expiring {
  readonly #until = new Map<string, number>();

  /** until 0 lifts it. */
  set(room: string, user: string, until: number): void {
    if (until === 0) this.#until.delete(`${room}\u0000${user}`);
    else this.#until.set(`${room}\u0000${user}`, until);
  }

  /** Milliseconds left (0: none). */
  left(room: string, user: string): number {
    const key = `${room}\u0000${user}`;
    const until = this.#until.get(key);
    if (until === undefined) return 0;
    const left = until - Date.now();
    if (left <= 0) this.#until.delete(key);
    return Math.max(0, left);
  }
}

/** The per-user rate limit (a token bucket each; the oldest of 10,000 users goes first). Per node: not shared across nodes. */
export class UserBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {}

  take(user: string): boolean {
    let b = this.#buckets.get(user);
    if (!b) {
      if (this.#buckets.size >= 10_000) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = new TokenBucket(this.ratePerSecond, this.burst);
      this.#buckets.set(user, b);
    }
    return b.take();
  }
}

/** A stored record as a ChatEvent, or undefined when it is not one (something else published to the topic). */
export function decode(room: string, offset: number, t: number, payload: Buffer): ChatEvent | undefined {
  try {
    const s = JSON.parse(payload.toString('utf8')) as StoredEvent;
    if (typeof s !== 'object' || s === null || typeof s.kind !== 'string' || typeof s.user !== 'string') return undefined;
    const ev: ChatEvent = { type: 'event', room, offset, t, kind: s.kind, user: s.user };
    if (typeof s.text === 'string') ev.text = s.text;
    if (typeof s.ref === 'number') ev.ref = s.ref;
    if (typeof s.target === 'string') ev.target = s.target;
    if (typeof s.until === 'number') ev.until = s.until;
    if (typeof s.cid === 'string') ev.cid = s.cid;
    return ev;
  } catch {
    return undefined;
  }
}
