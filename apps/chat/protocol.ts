/**
 * The chat protocol (issue 15): JSON text messages, one per WebSocket frame, the same for the web page, the terminal
 * client and the tests. README "## Chat" lists every type. Stored events (the room's history, in the durable log of the
 * room's topic `chat.room.<name>`) carry an `offset`; ephemeral ones (presence, typing, receipts) never do.
 */
import { WirelabError } from '../../core/errors.ts';

/** Stable codes of the chat server's refusals (an `error` message's `code`, a ChatError's `code`). */
export const ChatCodes = {
  /** Not JSON, not an object, an unknown type, a field of the wrong type. */
  INVALID: 'WL_ERR_CHAT_INVALID',
  /** A bad name: empty, too long, control characters, or taken by a kicked user. */
  NAME: 'WL_ERR_CHAT_NAME',
  /** A bad room name. */
  ROOM: 'WL_ERR_CHAT_ROOM',
  /** A named limit (`limit`): maxMessageChars, maxRoomsPerConnection, maxRooms, maxHistoryPage... */
  LIMIT: 'WL_ERR_CHAT_LIMIT',
  /** The per-user rate limit: `retryAfterMs` says when the next message is accepted. */
  RATE: 'WL_ERR_CHAT_RATE',
  /** Frames faster than maxFramesPerSecond from one connection. */
  FLOOD: 'WL_ERR_CHAT_FLOOD',
  /** Something only the room owner (or the author) may do. */
  FORBIDDEN: 'WL_ERR_CHAT_FORBIDDEN',
  /** Muted in this room by its owner (`retryAfterMs`). */
  MUTED: 'WL_ERR_CHAT_MUTED',
  /** Kicked from the room: no rejoin before `retryAfterMs`. */
  KICKED: 'WL_ERR_CHAT_KICKED',
  /** hello first; or a room not joined. */
  STATE: 'WL_ERR_CHAT_STATE',
  /** No such message (edit / delete of an offset that is not a message). */
  NOT_FOUND: 'WL_ERR_CHAT_NOT_FOUND',
  /** Client side: the server's certificate did not verify against the CA the client trusts, or the TLS handshake failed (Node's code in the message and `cause`). */
  TLS: 'WL_ERR_CHAT_TLS',
  /** The broker refused or failed (its code in `cause`). */
  BROKER: 'WL_ERR_CHAT_BROKER',
  /** A DM or a DM signal to a user who is not online in a room the sender is in (server/dm.ts). */
  PEER: 'WL_ERR_CHAT_PEER',
  /**
   * A hello refused (server/auth.ts): a registered name without its password or token, bad credentials (one answer
   * for all of them), credentials on a connection without TLS (unless allowInsecureAuth), or no guests allowed.
   */
  AUTH: 'WL_ERR_CHAT_AUTH',
} as const;
export type ChatCode = (typeof ChatCodes)[keyof typeof ChatCodes];

/** A chat refusal, as the client library raises it from an `error` message. */
export class ChatError extends WirelabError {
  readonly limit?: string;
  readonly retryAfterMs?: number;
  constructor(code: string, message: string, extra: { limit?: string; retryAfterMs?: number; cause?: unknown } = {}) {
    super(code, message, extra.cause === undefined ? {} : { cause: extra.cause });
    this.name = 'ChatError';
    if (extra.limit !== undefined) this.limit = extra.limit;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

/** The topic of a room. */
export const roomTopic = (room: string): string => `chat.room.${room}`;
export const ROOM_PATTERN = 'chat.room.*';
export const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** What a stored event is: the room's first record names its owner (`created`). */
export type StoredKind = 'created' | 'msg' | 'edit' | 'delete' | 'mute' | 'kick';

/** A stored event as the log holds it (the JSON payload of one record). */
export interface StoredEvent {
  kind: StoredKind;
  user: string;
  text?: string;
  /** edit / delete: the offset of the message; mute / kick: unused. */
  ref?: number;
  /** mute / kick: whom. */
  target?: string;
  /** mute: until when (ms since the epoch; 0 unmutes). */
  until?: number;
  /** The author's own id for a send (correlates the `sent` receipt, dedups a resend). */
  cid?: string;
}

/** A stored event as clients get it. */
export interface ChatEvent extends StoredEvent {
  type: 'event';
  room: string;
  offset: number;
  /** When the broker stored it (ms since the epoch). */
  t: number;
}

export type ReceiptState = 'delivered' | 'seen';

export type ClientMessage =
  /** `name` may be left out with a token (the token's user is the name); `password` or `token` for a registered name. */
  | { type: 'hello'; name?: string; password?: string; token?: string }
  | { type: 'join'; room: string; since?: number }
  | { type: 'leave'; room: string }
  | { type: 'send'; room: string; text: string; cid: string }
  | { type: 'edit'; room: string; ref: number; text: string }
  | { type: 'delete'; room: string; ref: number }
  | { type: 'typing'; room: string; on: boolean }
  | { type: 'receipt'; room: string; offset: number; state: ReceiptState }
  | { type: 'history'; room: string; before: number; limit?: number }
  | { type: 'who'; room: string }
  | { type: 'mute'; room: string; user: string; ms: number }
  | { type: 'kick'; room: string; user: string }
  | { type: 'ping'; t: number }
  | DmClientMessage;

/**
 * Direct messages (server/dm.ts). `signal` carries WebRTC signaling between two users (offer, answer, ICE candidates,
 * bye) so they can open a data channel and DM peer to peer; `dm` is the relay fallback (through the server to the other
 * user's connections only, never stored); `dm-ack` is the receiver's receipt of a relayed DM (its latency).
 */
export type DmSignalKind = 'offer' | 'answer' | 'candidate' | 'bye';
export interface DmCandidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}
export type DmClientMessage =
  | { type: 'signal'; to: string; session: string; kind: DmSignalKind; sdp?: string; candidate?: DmCandidate | null }
  | { type: 'dm'; to: string; id: string; text: string }
  | { type: 'dm-ack'; to: string; id: string };
export type DmServerMessage =
  | { type: 'signal'; from: string; session: string; kind: DmSignalKind; sdp?: string; candidate?: DmCandidate | null }
  | { type: 'dm'; from: string; id: string; text: string; t: number }
  | { type: 'dm-ack'; from: string; id: string };
export const DM_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export type ServerMessage =
  /** `auth`: how the name was checked (`guest`: not at all). */
  | { type: 'welcome'; name: string; transport: string; auth: 'password' | 'token' | 'guest'; limits: Record<string, number> }
  | { type: 'joined'; room: string; owner: string | undefined; online: string[]; recovered: boolean; from: number; end: number }
  | { type: 'synced'; room: string; next: number }
  | ChatEvent
  | { type: 'sent'; room: string; cid: string; offset: number; t: number; duplicate: boolean }
  | { type: 'receipt'; room: string; user: string; offset: number; state: ReceiptState }
  | { type: 'presence'; room: string; user: string; state: 'join' | 'leave'; online: string[] }
  | { type: 'typing'; room: string; user: string; on: boolean }
  | { type: 'history'; room: string; events: ChatEvent[]; before: number; first: number }
  | { type: 'who'; room: string; online: string[]; owner: string | undefined }
  | { type: 'left'; room: string; reason: string }
  | { type: 'error'; code: ChatCode; message: string; limit?: string; retryAfterMs?: number; room?: string; cid?: string }
  | { type: 'pong'; t: number }
  | DmServerMessage;

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/;

/** Why a name is refused, or undefined when it is fine: 1..maxChars characters, no control or bidi characters, no leading/trailing space. */
export function nameProblem(name: unknown, maxChars: number): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'a name is a non-empty string';
  if ([...name].length > maxChars) return `a name has at most ${maxChars} characters (maxNameChars)`;
  if (CONTROL.test(name)) return 'a name may not contain control or bidi characters';
  if (name.trim() !== name) return 'a name may not start or end with spaces';
  return undefined;
}

export function roomProblem(room: unknown): string | undefined {
  if (typeof room !== 'string' || !ROOM_RE.test(room)) return 'a room is 1-32 of a-z 0-9 _ - (starting with a letter or digit)';
  return undefined;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

/** Parses one client frame; returns a ClientMessage or a reason it is invalid. Checks shape only, not limits. */
export function parseClientMessage(text: string): ClientMessage | { invalid: string } {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return { invalid: 'not JSON' };
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return { invalid: 'not a JSON object' };
  const o = m as Record<string, unknown>;
  const needRoom = (): string | undefined => (isStr(o.room) ? undefined : 'room: a string');
  let bad: string | undefined;
  switch (o.type) {
    case 'hello':
      bad =
        (o.password !== undefined && o.token !== undefined ? 'a password or a token, not both' : undefined) ??
        (o.password === undefined || isStr(o.password) ? undefined : 'password: a string') ??
        (o.token === undefined || isStr(o.token) ? undefined : 'token: a string') ??
        (isStr(o.name) || (o.name === undefined && o.token !== undefined) ? undefined : 'name: a string');
      break;
    case 'join':
      bad = needRoom() ?? (o.since === undefined || (isInt(o.since) && o.since >= -1) ? undefined : 'since: an offset');
      break;
    case 'leave':
    case 'who':
      bad = needRoom();
      break;
    case 'send':
      bad = needRoom() ?? (isStr(o.text) ? undefined : 'text: a string') ?? (isStr(o.cid) && o.cid.length > 0 && o.cid.length <= 64 ? undefined : 'cid: a string of 1-64 characters');
      break;
    case 'edit':
      bad = needRoom() ?? (isInt(o.ref) && o.ref >= 0 ? undefined : 'ref: an offset') ?? (isStr(o.text) ? undefined : 'text: a string');
      break;
    case 'delete':
      bad = needRoom() ?? (isInt(o.ref) && o.ref >= 0 ? undefined : 'ref: an offset');
      break;
    case 'typing':
      bad = needRoom() ?? (typeof o.on === 'boolean' ? undefined : 'on: true or false');
      break;
    case 'receipt':
      bad = needRoom() ?? (isInt(o.offset) && o.offset >= 0 ? undefined : 'offset: an offset') ?? (o.state === 'delivered' || o.state === 'seen' ? undefined : 'state: delivered or seen');
      break;
    case 'history':
      bad = needRoom() ?? (isInt(o.before) && o.before >= 0 ? undefined : 'before: an offset') ?? (o.limit === undefined || (isInt(o.limit) && o.limit > 0) ? undefined : 'limit: a positive integer');
      break;
    case 'mute':
      bad = needRoom() ?? (isStr(o.user) ? undefined : 'user: a string') ?? (isInt(o.ms) && o.ms >= 0 ? undefined : 'ms: milliseconds (0 unmutes)');
      break;
    case 'kick':
      bad = needRoom() ?? (isStr(o.user) ? undefined : 'user: a string');
      break;
    case 'ping':
      bad = typeof o.t === 'number' ? undefined : 't: a number';
      break;
    case 'signal':
    case 'dm':
    case 'dm-ack':
      bad = dmProblem(o);
      break;
    default:
      return { invalid: `unknown type ${JSON.stringify(String(o.type)).slice(0, 40)}` };
  }
  return bad ? { invalid: `${String(o.type)}: ${bad}` } : (o as unknown as ClientMessage);
}

const isOptional = (v: unknown, ok: (v: unknown) => boolean): boolean => v === undefined || v === null || ok(v);

/** The shape of a DM message (sizes are the server's limits: maxSdpBytes, maxCandidateBytes, maxMessageChars). */
function dmProblem(o: Record<string, unknown>): string | undefined {
  if (!isStr(o.to)) return 'to: a user name';
  if (o.type !== 'signal') {
    if (!isStr(o.id) || !DM_ID_RE.test(o.id)) return 'id: 1-64 of A-Z a-z 0-9 _ -';
    return o.type === 'dm' && !isStr(o.text) ? 'text: a string' : undefined;
  }
  if (!isStr(o.session) || !DM_ID_RE.test(o.session)) return 'session: 1-64 of A-Z a-z 0-9 _ -';
  if (o.kind === 'offer' || o.kind === 'answer') return isStr(o.sdp) ? undefined : 'sdp: a string';
  if (o.kind === 'bye') return undefined;
  if (o.kind !== 'candidate') return 'kind: offer, answer, candidate or bye';
  if (o.candidate === null) return undefined;
  const c = o.candidate as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null || !isStr(c.candidate)) return 'candidate: an RTCIceCandidate as JSON, or null';
  if (!isOptional(c.sdpMid, isStr) || !isOptional(c.sdpMLineIndex, isInt) || !isOptional(c.usernameFragment, isStr)) return 'candidate: sdpMid, sdpMLineIndex, usernameFragment of the wrong type';
  return undefined;
}
