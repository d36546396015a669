/**
 * wirelab's WebRTC signaling format (README, "Signaling messages"): JSON text messages over a WebSocket, one per frame,
 * each an object with a string `type`. servers/webrtc/signaling.ts and clients/signaling.ts both speak it through these
 * types; `parsePeerMessage` / `parseServerMessage` are the one place a received message is checked, so neither end casts.
 */

/** Room names and peer / session ids: 1-64 characters of [A-Za-z0-9_-]. */
export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** The message types a peer sends to another; the server passes them on to `to` with `from` added. */
export const RELAYED = ['offer', 'answer', 'candidate', 'bye'] as const;
export type RelayedType = (typeof RELAYED)[number];

export type SignalingErrorCode =
  | 'bad-json'
  | 'bad-message'
  | 'unknown-type'
  | 'too-big'
  | 'not-joined'
  | 'already-joined'
  | 'unknown-room'
  | 'room-full'
  | 'too-many-rooms'
  | 'unknown-peer'
  | 'too-many-errors';

/** An ICE candidate as RTCIceCandidate.toJSON() gives it. */
export interface IceCandidateJson {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** Fields of every relayed message: the addressee, the negotiation it belongs to, and (as received) the sender. */
interface Relayed {
  to: string;
  session: string;
  /** Added by the server: the sender's peer id. */
  from?: string;
}

// Peer → server.
export interface JoinMessage { type: 'join'; room: string }
export interface LeaveMessage { type: 'leave' }
// Peer → server → peer.
export interface OfferMessage extends Relayed { type: 'offer'; sdp: string }
export interface AnswerMessage extends Relayed { type: 'answer'; sdp: string }
/** `candidate: null` is the end of candidates. */
export interface CandidateMessage extends Relayed { type: 'candidate'; candidate: IceCandidateJson | null }
export interface ByeMessage extends Relayed { type: 'bye' }
// Server → peer.
export interface WelcomeMessage { type: 'welcome'; id: string; maxMessageBytes: number }
export interface JoinedMessage { type: 'joined'; room: string; id: string; peers: string[] }
export interface PeerJoinedMessage { type: 'peer-joined'; room: string; peer: string }
export interface PeerLeftMessage { type: 'peer-left'; room: string; peer: string }
export interface ErrorMessage { type: 'error'; code: SignalingErrorCode; message: string; ref?: string }

export type RelayedMessage = OfferMessage | AnswerMessage | CandidateMessage | ByeMessage;
/** What a peer sends. */
export type PeerMessage = JoinMessage | LeaveMessage | RelayedMessage;
/** What the server sends. */
export type ServerMessage = WelcomeMessage | JoinedMessage | PeerJoinedMessage | PeerLeftMessage | ErrorMessage | RelayedMessage;
export type SignalMessage = PeerMessage | ServerMessage;
export type SignalType = SignalMessage['type'];
/** The message of one type: `SignalOf<'offer'>` is OfferMessage. */
export type SignalOf<T extends SignalType> = Extract<SignalMessage, { type: T }>;

export function isRelayedType(type: string): type is RelayedType {
  return (RELAYED as readonly string[]).includes(type);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is string => typeof v === 'string' && ID_RE.test(v);
const isRoom = (v: unknown): v is string => typeof v === 'string' && ROOM_RE.test(v);

/** The result of checking a decoded JSON value: the typed message, or what is wrong with it (the server's answer). */
export type Parsed<M extends SignalMessage> = { ok: true; message: M } | { ok: false; code: SignalingErrorCode; problem: string; ref?: string };

const bad = (problem: string, ref?: string): Parsed<never> => ({ ok: false, code: 'bad-message', problem, ...(ref === undefined ? {} : { ref }) });

const unknownType = (type: string): Parsed<never> => ({
  ok: false,
  code: 'unknown-type',
  problem: `unknown type "${type.slice(0, 32)}"; types: join, leave, ${RELAYED.join(', ')}`,
});

/**
 * Checks what a peer sent (the server's side): join, leave and the relayed types, field by field. The problems are the
 * server's `error` answers, word for word; a bad relayed message or join carries its type as `ref`.
 */
export function parsePeerMessage(v: unknown): Parsed<PeerMessage> {
  if (!isObject(v) || typeof v.type !== 'string') return bad('a message is a JSON object with a string "type"');
  const type = v.type;
  if (type === 'join') return isRoom(v.room) ? { ok: true, message: { type, room: v.room } } : bad('"room" must be 1-64 characters of [A-Za-z0-9_-]', 'join');
  if (type === 'leave') return { ok: true, message: { type } };
  if (isRelayedType(type)) return parseRelayed(type, v);
  return unknownType(type);
}

/**
 * Checks what the server sent (a peer's side): the relayed types as above, the server's own by the fields a peer reads.
 * A type this peer does not know is `unknown-type` (ignored, so a peer follows a newer server).
 */
export function parseServerMessage(v: unknown): Parsed<ServerMessage> {
  if (!isObject(v) || typeof v.type !== 'string') return bad('a message is a JSON object with a string "type"');
  const type = v.type;
  switch (type) {
    case 'welcome':
      return typeof v.id === 'string' ? { ok: true, message: { type, id: v.id, maxMessageBytes: Number(v.maxMessageBytes) } } : bad('"id" must be a string', type);
    case 'joined':
      return typeof v.room === 'string' && typeof v.id === 'string' && Array.isArray(v.peers) && v.peers.every((p) => typeof p === 'string')
        ? { ok: true, message: { type, room: v.room, id: v.id, peers: v.peers } }
        : bad('"joined" needs room, id and peers', type);
    case 'peer-joined':
    case 'peer-left':
      return typeof v.room === 'string' && typeof v.peer === 'string' ? { ok: true, message: { type, room: v.room, peer: v.peer } } : bad(`"${type}" needs room and peer`, type);
    case 'error':
      return { ok: true, message: { type, code: String(v.code) as SignalingErrorCode, message: String(v.message), ...(typeof v.ref === 'string' ? { ref: v.ref } : {}) } };
    default:
      return isRelayedType(type) ? parseRelayed(type, v) : unknownType(type);
  }
}

function parseRelayed(type: RelayedType, v: Record<string, unknown>): Parsed<RelayedMessage> {
  if (!isId(v.to)) return bad('"to" must be a peer id', type);
  if (!isId(v.session)) return bad('"session" must be 1-64 characters of [A-Za-z0-9_-]', type);
  const base = { to: v.to, session: v.session, ...(typeof v.from === 'string' ? { from: v.from } : {}) };
  switch (type) {
    case 'offer':
    case 'answer':
      if (typeof v.sdp !== 'string' || !v.sdp.startsWith('v=0')) return bad(`"sdp" must be an SDP string starting with v=0`, type);
      return { ok: true, message: { type, ...base, sdp: v.sdp } };
    case 'candidate': {
      const c = v.candidate;
      if (c === null) return { ok: true, message: { type, ...base, candidate: null } };
      if (!isObject(c) || typeof c.candidate !== 'string') return bad('"candidate" must be { candidate, sdpMid, sdpMLineIndex } or null (end of candidates)', type);
      const candidate: IceCandidateJson = { candidate: c.candidate };
      if (typeof c.sdpMid === 'string' || c.sdpMid === null) candidate.sdpMid = c.sdpMid;
      if (typeof c.sdpMLineIndex === 'number' || c.sdpMLineIndex === null) candidate.sdpMLineIndex = c.sdpMLineIndex;
      if (typeof c.usernameFragment === 'string' || c.usernameFragment === null) candidate.usernameFragment = c.usernameFragment;
      return { ok: true, message: { type, ...base, candidate } };
    }
    case 'bye':
      return { ok: true, message: { type, ...base } };
  }
}
