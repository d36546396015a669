/**
 * wirelab's native pub/sub protocol (README "The native protocol"): the messages, as one typed union per direction.
 * The same messages travel in two encodings: JSON text frames over WebSocket (json.ts) and length-prefixed binary
 * frames over TCP (binary.ts). Both decode to a plain object, then `checkClientFields` / `checkServerFields` here
 * check every field: the one place a received message is checked, so neither end casts.
 */

/**
 * The protocol version a client names in `hello` and the server echoes in `welcome`: 2 adds the compact binary frames
 * (compact.ts: the server sends `msg` and `puback` compact over binary transports); 1 (JSON headers only) is still
 * served. A server refuses any other with WL_ERR_PUBSUB_INVALID.
 */
export const PUBSUB_PROTOCOL_VERSION = 2;
/** The oldest version a server still serves. */
export const PUBSUB_MIN_PROTOCOL_VERSION = 1;

export type Acks = 0 | 1 | 'all';
export type AckMode = 'none' | 'manual';
export type GroupMode = 'queue' | 'partitioned';
export type OverflowPolicy = 'block' | 'dropOldest' | 'dropNewest' | 'disconnect';
export type Headers = Record<string, string>;
/** Where a subscription starts: new messages only, the oldest kept, an offset (of one partition, or of each), or a time (ms since the epoch). */
export type From = 'new' | 'earliest' | { offset: number; partition?: number } | { time: number };

// ---- client -> server ----
export interface HelloMessage {
  type: 'hello';
  version: number;
  clientId?: string;
  user?: string;
  password?: string;
  token?: string;
}
export interface PubMessage {
  type: 'pub';
  /** Chosen by the client, echoed in the puback or error (unique among its pending publishes). */
  id: number;
  topic: string;
  payload: Buffer;
  key?: string;
  partition?: number;
  headers?: Headers;
  msgId?: string;
  ttlMs?: number;
  /** Default: the broker's (acks 0: no puback at all). */
  acks?: Acks;
}
export interface SubMessage {
  type: 'sub';
  /** Chosen by the client: names the subscription in every `msg`, in `unsub` and in errors. */
  id: string;
  pattern: string;
  group?: string;
  /** With `group`: 'queue' (default) or 'partitioned'. */
  mode?: GroupMode;
  /** Default 'manual'. */
  ack?: AckMode;
  from?: From;
  replay?: 'instant' | 'original';
  buffer?: { size?: number; policy?: OverflowPolicy };
  ackWaitMs?: number;
  maxDeliver?: number;
  maxAckPending?: number;
  backoffMs?: number[];
  deadLetterTopic?: string;
}
export interface UnsubMessage { type: 'unsub'; id: string }
export interface AckMessage { type: 'ack'; deliveryId: string }
export interface NakMessage { type: 'nak'; deliveryId: string; delayMs?: number }
export interface ProgressMessage { type: 'progress'; deliveryId: string }
export interface TermMessage { type: 'term'; deliveryId: string; reason?: string }
export interface PingMessage { type: 'ping'; id?: number }

export type ClientMessage =
  | HelloMessage
  | PubMessage
  | SubMessage
  | UnsubMessage
  | AckMessage
  | NakMessage
  | ProgressMessage
  | TermMessage
  | PingMessage;

// ---- server -> client ----
export interface WelcomeMessage {
  type: 'welcome';
  version: number;
  session: string;
  /** The authenticated user (absent: anonymous). */
  user?: string;
  /** The largest frame the server accepts. */
  maxFrameBytes: number;
}
export interface PubackMessage {
  type: 'puback';
  id: number;
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  /** True when msgId was seen within the duplicate window: stored once, `offset` is the first copy's. */
  duplicate: boolean;
}
export interface SubscribedMessage { type: 'subscribed'; id: string }
export interface MsgMessage {
  type: 'msg';
  /** The subscription id. */
  sub: string;
  /** Pass to ack / nak / progress / term (absent when the subscription's ack is 'none'). */
  deliveryId?: string;
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  key?: string;
  headers: Headers;
  payload: Buffer;
  msgId?: string;
  /** 1 for the first delivery. */
  attempt: number;
}
export interface ErrorMessage {
  type: 'error';
  /** The pub id (number) or sub id (string) the error answers; absent for a connection-level error. */
  id?: number | string;
  /** A WL_ERR_PUBSUB_* code (or WL_ERR_FRAME_TOO_LONG). */
  code: string;
  message: string;
  /** For WL_ERR_PUBSUB_LIMIT: the limit's name. */
  limit?: string;
}
export interface ClosedMessage { type: 'closed'; reason: string }
export interface PongMessage { type: 'pong'; id?: number }

export type ServerMessage =
  | WelcomeMessage
  | PubackMessage
  | SubscribedMessage
  | MsgMessage
  | ErrorMessage
  | ClosedMessage
  | PongMessage;

export type PubsubMessage = ClientMessage | ServerMessage;
export const CLIENT_TYPES = ['hello', 'pub', 'sub', 'unsub', 'ack', 'nak', 'progress', 'term', 'ping'] as const;
export const SERVER_TYPES = ['welcome', 'puback', 'subscribed', 'msg', 'error', 'closed', 'pong'] as const;

/** A checked message, or what is wrong (the server answers with an `error` carrying `id` when the frame had one). */
export type Parsed<M> = { ok: true; message: M } | { ok: false; problem: string; id?: number | string };

/** A frame's fields as either decoder produced them: `payload` already bytes. */
export type RawFields = Record<string, unknown>;

class Bad extends Error {}
const bad = (problem: string): never => {
  throw new Bad(problem);
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAX_STRING = 1024;

function str(v: RawFields, name: string, required: true, max?: number): string;
function str(v: RawFields, name: string, required: false, max?: number): string | undefined;
function str(v: RawFields, name: string, required: boolean, max = MAX_STRING): string | undefined {
  const x = v[name];
  if (x === undefined || x === null) return required ? bad(`"${name}" is required`) : undefined;
  if (typeof x !== 'string' || x.length === 0 || x.length > max) return bad(`"${name}" must be a string of 1-${max} characters`);
  return x;
}

function int(v: RawFields, name: string, required: true, min?: number, max?: number): number;
function int(v: RawFields, name: string, required: false, min?: number, max?: number): number | undefined;
function int(v: RawFields, name: string, required: boolean, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const x = v[name];
  if (x === undefined || x === null) return required ? bad(`"${name}" is required`) : undefined;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) return bad(`"${name}" must be an integer in [${min}, ${max}]`);
  return x;
}

function oneOf<T extends string | number>(v: RawFields, name: string, allowed: readonly T[]): T | undefined {
  const x = v[name];
  if (x === undefined || x === null) return undefined;
  if (!(allowed as readonly unknown[]).includes(x)) return bad(`"${name}" must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  return x as T;
}

function bool(v: RawFields, name: string): boolean | undefined {
  const x = v[name];
  if (x === undefined || x === null) return undefined;
  if (typeof x !== 'boolean') return bad(`"${name}" must be true or false`);
  return x;
}

/** Header names and values: strings; at most 64 headers of 8 KiB each (the broker's maxHeaderBytes bounds the total). */
function headers(v: RawFields, required: boolean): Headers | undefined {
  const x = v.headers;
  if (x === undefined || x === null) return required ? {} : undefined;
  if (!isObject(x)) return bad('"headers" must be an object of strings');
  const entries = Object.entries(x);
  if (entries.length > 64) return bad('"headers": at most 64');
  const out: Headers = {};
  for (const [k, val] of entries) {
    if (k.length === 0 || k.length > 256 || typeof val !== 'string' || val.length > 8192) return bad('"headers" must map names (1-256 characters) to strings (up to 8192)');
    out[k] = val;
  }
  return out;
}

function payload(v: RawFields): Buffer {
  const p = v.payload;
  if (!Buffer.isBuffer(p)) return bad('"payload" is required');
  return p;
}

function from(v: RawFields): From | undefined {
  const x = v.from;
  if (x === undefined || x === null) return undefined;
  if (x === 'new' || x === 'earliest') return x;
  if (isObject(x)) {
    if (x.offset !== undefined) {
      const offset = int(x, 'offset', true);
      const partition = int(x, 'partition', false, 0, 65535);
      return partition === undefined ? { offset } : { offset, partition };
    }
    if (x.time !== undefined) return { time: int(x, 'time', true) };
  }
  return bad('"from" must be "new", "earliest", { "offset": n, "partition"?: p } or { "time": ms }');
}

const defined = <T extends object>(o: T): T => {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
};

const DAY = 86_400_000;

const CLIENT_CHECKS: Record<ClientMessage['type'], (v: RawFields) => ClientMessage> = {
  hello: (v) =>
    defined({
      type: 'hello',
      version: int(v, 'version', true, 0, 65535),
      clientId: str(v, 'clientId', false, 128),
      user: str(v, 'user', false, 128),
      password: str(v, 'password', false),
      token: str(v, 'token', false),
    }),
  pub: (v) =>
    defined({
      type: 'pub',
      id: int(v, 'id', true, 0, 0xffffffff),
      topic: str(v, 'topic', true, 255),
      payload: payload(v),
      key: str(v, 'key', false),
      partition: int(v, 'partition', false, 0, 65535),
      headers: headers(v, false),
      msgId: str(v, 'msgId', false, 256),
      ttlMs: int(v, 'ttlMs', false, 1, 365 * DAY),
      acks: oneOf<Acks>(v, 'acks', [0, 1, 'all']),
    }),
  sub: (v) => {
    const buffer = v.buffer;
    if (buffer !== undefined && buffer !== null && !isObject(buffer)) bad('"buffer" must be { size?, policy? }');
    const backoff = v.backoffMs;
    if (backoff !== undefined && backoff !== null && (!Array.isArray(backoff) || backoff.length > 32 || !backoff.every((n) => Number.isInteger(n) && n >= 0 && n <= DAY))) {
      bad('"backoffMs" must be up to 32 integers of ms');
    }
    const group = str(v, 'group', false, 128);
    const mode = oneOf<GroupMode>(v, 'mode', ['queue', 'partitioned']);
    if (mode !== undefined && group === undefined) bad('"mode" needs "group"');
    return defined({
      type: 'sub',
      id: str(v, 'id', true, 64),
      pattern: str(v, 'pattern', true, 255),
      group,
      mode,
      ack: oneOf<AckMode>(v, 'ack', ['none', 'manual']),
      from: from(v),
      replay: oneOf(v, 'replay', ['instant', 'original'] as const),
      buffer: isObject(buffer)
        ? defined({ size: int(buffer, 'size', false, 1, 1_000_000), policy: oneOf<OverflowPolicy>(buffer, 'policy', ['block', 'dropOldest', 'dropNewest', 'disconnect']) })
        : undefined,
      ackWaitMs: int(v, 'ackWaitMs', false, 1, DAY),
      maxDeliver: int(v, 'maxDeliver', false, 0, 1_000_000),
      maxAckPending: int(v, 'maxAckPending', false, 1, 1_000_000),
      backoffMs: backoff as number[] | undefined,
      deadLetterTopic: str(v, 'deadLetterTopic', false, 255),
    });
  },
  unsub: (v) => ({ type: 'unsub', id: str(v, 'id', true, 64) }),
  ack: (v) => ({ type: 'ack', deliveryId: str(v, 'deliveryId', true, 256) }),
  nak: (v) => defined({ type: 'nak', deliveryId: str(v, 'deliveryId', true, 256), delayMs: int(v, 'delayMs', false, 0, DAY) }),
  progress: (v) => ({ type: 'progress', deliveryId: str(v, 'deliveryId', true, 256) }),
  term: (v) => defined({ type: 'term', deliveryId: str(v, 'deliveryId', true, 256), reason: str(v, 'reason', false) }),
  ping: (v) => defined({ type: 'ping', id: int(v, 'id', false, 0, 0xffffffff) }),
};

const SERVER_CHECKS: Record<ServerMessage['type'], (v: RawFields) => ServerMessage> = {
  welcome: (v) =>
    defined({
      type: 'welcome',
      version: int(v, 'version', true, 0, 65535),
      session: str(v, 'session', true),
      user: str(v, 'user', false),
      maxFrameBytes: int(v, 'maxFrameBytes', true, 1),
    }),
  puback: (v) => ({
    type: 'puback',
    id: int(v, 'id', true, 0, 0xffffffff),
    topic: str(v, 'topic', true, 255),
    partition: int(v, 'partition', true),
    offset: int(v, 'offset', true),
    ts: int(v, 'ts', true),
    duplicate: bool(v, 'duplicate') ?? false,
  }),
  subscribed: (v) => ({ type: 'subscribed', id: str(v, 'id', true, 64) }),
  msg: (v) =>
    defined({
      type: 'msg',
      sub: str(v, 'sub', true, 64),
      deliveryId: str(v, 'deliveryId', false, 256),
      topic: str(v, 'topic', true, 255),
      partition: int(v, 'partition', true),
      offset: int(v, 'offset', true),
      ts: int(v, 'ts', true),
      key: str(v, 'key', false),
      headers: headers(v, true)!,
      payload: payload(v),
      msgId: str(v, 'msgId', false, 256),
      attempt: int(v, 'attempt', true, 1),
    }),
  error: (v) => {
    const id = v.id;
    if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') bad('"id" must be a number or a string');
    return defined({
      type: 'error',
      id: (id ?? undefined) as number | string | undefined,
      code: str(v, 'code', true, 64),
      message: typeof v.message === 'string' ? v.message : '',
      limit: str(v, 'limit', false, 64),
    });
  },
  closed: (v) => ({ type: 'closed', reason: typeof v.reason === 'string' ? v.reason : '' }),
  pong: (v) => defined({ type: 'pong', id: int(v, 'id', false, 0, 0xffffffff) }),
};

function check<M>(table: Record<string, (v: RawFields) => M>, v: unknown): Parsed<M> {
  if (!isObject(v) || typeof v.type !== 'string') return { ok: false, problem: 'a message is an object with a string "type"' };
  const fn = Object.hasOwn(table, v.type) ? table[v.type] : undefined;
  const rawId = v.id;
  const id = typeof rawId === 'number' || typeof rawId === 'string' ? rawId : undefined;
  if (!fn) return { ok: false, problem: `unknown type ${JSON.stringify(v.type.slice(0, 32))}; types: ${Object.keys(table).join(', ')}`, ...(id === undefined ? {} : { id }) };
  try {
    return { ok: true, message: fn(v) };
  } catch (err) {
    if (!(err instanceof Bad)) throw err;
    return { ok: false, problem: `${v.type}: ${err.message}`, ...(id === undefined ? {} : { id }) };
  }
}

/** Checks every field of a client message decoded by either encoding. */
export function checkClientFields(v: unknown): Parsed<ClientMessage> {
  return check(CLIENT_CHECKS, v);
}

/** Checks every field of a server message decoded by either encoding. */
export function checkServerFields(v: unknown): Parsed<ServerMessage> {
  return check(SERVER_CHECKS, v);
}
