import { randomBytes } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { checkInt, InvalidOptionError, withDefaults } from '../../core/options.ts';
import { NOOP_TRACER, type Tracer } from '../../core/trace/index.ts';
import { isRelayedType, parsePeerMessage, ROOM_RE, type JoinMessage, type RelayedMessage, type ServerMessage, type SignalingErrorCode } from '../../protocols/signaling.ts';
import type { WsPathHandler } from '../ws/index.ts';

/**
 * WebRTC signaling over WebSocket: JSON text messages, one per frame (the format is in the README, "WebRTC").
 * The server gives each connection a peer id, keeps rooms, and relays offer, answer, candidate and bye to one peer of
 * the same room, adding `from`. It never reads an SDP: it only checks the shape of each message.
 */
export interface SignalingOptions {
  /**
   * Largest signaling message, in bytes. startSignalingServer makes it ws's maxPayload on /signal, so a bigger one
   * closes the connection with 1009 before it is buffered; on a WebSocket server with a larger limit it is answered
   * { type: 'error', code: 'too-big' }. Default 64 KiB.
   */
  maxMessageBytes?: number;
  /** Rooms at once; a join that would create one more is answered 'too-many-rooms'. Default 256. */
  maxRooms?: number;
  /** Peers in one room; one more is answered 'room-full'. Default 16. */
  maxPeersPerRoom?: number;
  /** Bad messages one connection may send; the next closes it with 1008 (policy violation). Default 20. */
  maxErrors?: number;
  /** When set, the only rooms that exist; a join to any other is answered 'unknown-room'. Default: any valid name. */
  rooms?: string[];
  tracer?: Tracer;
}

export const SIGNALING_DEFAULTS = Object.freeze({ maxMessageBytes: 64 * 1024, maxRooms: 256, maxPeersPerRoom: 16, maxErrors: 20 });

export interface SignalingStats {
  /** Connections accepted on the signaling path. */
  connections: number;
  joins: number;
  /** Messages relayed, by type. */
  relayed: Record<string, number>;
  /** Error answers, by code. */
  errors: Record<string, number>;
  messagesIn: number;
  messagesOut: number;
  /** Payload bytes of the signaling messages in and out (WebSocket framing not counted). */
  bytesIn: number;
  bytesOut: number;
}

export interface Signaling {
  /** Hand it to the WebSocket server: startWsServer({ paths: { '/signal': signaling.accept } }). */
  accept: WsPathHandler;
  readonly stats: SignalingStats;
  /** The resolved maxMessageBytes (for the WebSocket server's per-path maxPayload). */
  readonly maxMessageBytes: number;
  /** Room name to the peer ids in it, now. */
  rooms(): Map<string, string[]>;
}

interface Member {
  id: string;
  ws: WebSocket;
  room?: string;
  errors: number;
}

export function createSignaling(options: SignalingOptions = {}): Signaling {
  const o = withDefaults(SIGNALING_DEFAULTS, options);
  checkInt('maxMessageBytes', o.maxMessageBytes, 64, 16 * 1024 * 1024);
  checkInt('maxRooms', o.maxRooms, 1, 1_000_000);
  checkInt('maxPeersPerRoom', o.maxPeersPerRoom, 2, 10_000);
  checkInt('maxErrors', o.maxErrors, 0, 1_000_000);
  if (o.rooms !== undefined && (!Array.isArray(o.rooms) || !o.rooms.every((r) => typeof r === 'string' && ROOM_RE.test(r)))) {
    throw new InvalidOptionError('rooms', 'an array of room names ([A-Za-z0-9_-]{1,64})', o.rooms);
  }
  const allowed = o.rooms ? new Set(o.rooms) : undefined;
  const tracer = o.tracer ?? NOOP_TRACER;
  const stats: SignalingStats = { connections: 0, joins: 0, relayed: {}, errors: {}, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
  const rooms = new Map<string, Map<string, Member>>();

  const send = (to: Member, msg: ServerMessage): void => {
    if (to.ws.readyState !== to.ws.OPEN) return;
    const text = JSON.stringify(msg);
    stats.messagesOut++;
    stats.bytesOut += Buffer.byteLength(text);
    to.ws.send(text);
  };

  const fail = (m: Member, cid: string, code: SignalingErrorCode, message: string, ref?: unknown): void => {
    stats.errors[code] = (stats.errors[code] ?? 0) + 1;
    m.errors++;
    tracer.emit('webrtc', cid, '<', 'signal-error', () => ({ summary: `error ${code}: ${message}`, meta: { code } }));
    send(m, { type: 'error', code, message, ...(typeof ref === 'string' ? { ref } : {}) });
    if (m.errors > o.maxErrors) {
      stats.errors['too-many-errors'] = (stats.errors['too-many-errors'] ?? 0) + 1;
      send(m, { type: 'error', code: 'too-many-errors', message: `more than maxErrors=${o.maxErrors} bad messages: closing` });
      m.ws.close(1008, 'too many bad signaling messages');
    }
  };

  const leave = (m: Member, cid: string): void => {
    if (!m.room) return;
    const members = rooms.get(m.room);
    members?.delete(m.id);
    tracer.emit('webrtc', cid, '*', 'signal-leave', () => `${m.id} left room ${m.room}`);
    for (const other of members?.values() ?? []) send(other, { type: 'peer-left', room: m.room, peer: m.id });
    if (members?.size === 0) rooms.delete(m.room);
    m.room = undefined;
  };

  const join = (m: Member, cid: string, msg: JoinMessage): void => {
    const room = msg.room;
    if (m.room) return fail(m, cid, 'already-joined', `already in room ${m.room}: send leave first`, 'join');
    if (allowed && !allowed.has(room)) return fail(m, cid, 'unknown-room', `no room "${room}" here`, 'join');
    let members = rooms.get(room);
    if (!members) {
      if (rooms.size >= o.maxRooms) return fail(m, cid, 'too-many-rooms', `maxRooms=${o.maxRooms} rooms exist`, 'join');
      rooms.set(room, (members = new Map()));
    }
    if (members.size >= o.maxPeersPerRoom) return fail(m, cid, 'room-full', `maxPeersPerRoom=${o.maxPeersPerRoom}`, 'join');
    const peers = [...members.keys()];
    members.set(m.id, m);
    m.room = room;
    stats.joins++;
    tracer.emit('webrtc', cid, '*', 'signal-join', () => `${m.id} joined room ${room} (${peers.length} already there)`);
    send(m, { type: 'joined', room, id: m.id, peers });
    for (const id of peers) send(members.get(id)!, { type: 'peer-joined', room, peer: m.id });
  };

  const relay = (m: Member, cid: string, msg: RelayedMessage): void => {
    if (!m.room) return fail(m, cid, 'not-joined', 'join a room before signaling', msg.type);
    const target = rooms.get(m.room)?.get(msg.to);
    if (!target || target === m) return fail(m, cid, 'unknown-peer', `no peer "${String(msg.to)}" in room ${m.room}`, msg.type);
    stats.relayed[msg.type] = (stats.relayed[msg.type] ?? 0) + 1;
    tracer.emit('webrtc', cid, '>', 'signal', () => ({
      summary: `${msg.type} ${m.id} → ${target.id} session=${msg.session}${msg.type === 'candidate' ? ` ${msg.candidate?.candidate ?? 'end-of-candidates'}` : ''}`,
      meta: { type: msg.type, from: m.id, to: target.id, session: msg.session },
    }));
    // Only the fields of the format go on, with the server's `from` (a peer cannot pose as another).
    const head = { from: m.id, to: target.id, session: msg.session };
    if (msg.type === 'offer' || msg.type === 'answer') send(target, { type: msg.type, ...head, sdp: msg.sdp });
    else if (msg.type === 'candidate') send(target, { type: msg.type, ...head, candidate: msg.candidate });
    else send(target, { type: msg.type, ...head });
  };

  const accept: WsPathHandler = (ws, cid) => {
    stats.connections++;
    const m: Member = { id: randomBytes(6).toString('base64url'), ws, errors: 0 };
    tracer.emit('webrtc', cid, '*', 'signal-open', () => `signaling connection: peer id ${m.id}`);
    send(m, { type: 'welcome', id: m.id, maxMessageBytes: o.maxMessageBytes });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      stats.messagesIn++;
      stats.bytesIn += buf.length;
      if (buf.length > o.maxMessageBytes) return fail(m, cid, 'too-big', `${buf.length} bytes > maxMessageBytes=${o.maxMessageBytes}`);
      if (isBinary) return fail(m, cid, 'bad-message', 'signaling messages are JSON text frames');
      let msg: unknown;
      try {
        msg = JSON.parse(buf.toString('utf8'));
      } catch {
        return fail(m, cid, 'bad-json', 'not JSON');
      }
      const parsed = parsePeerMessage(msg);
      if (!parsed.ok) {
        // A relayed type from a peer in no room is answered not-joined before its fields are looked at.
        if (parsed.ref !== undefined && isRelayedType(parsed.ref) && !m.room) return fail(m, cid, 'not-joined', 'join a room before signaling', parsed.ref);
        return fail(m, cid, parsed.code, parsed.problem, parsed.ref);
      }
      const p = parsed.message;
      if (p.type === 'join') return join(m, cid, p);
      if (p.type === 'leave') return leave(m, cid);
      return relay(m, cid, p);
    });
    ws.on('close', () => leave(m, cid));
  };

  return {
    accept,
    stats,
    maxMessageBytes: o.maxMessageBytes,
    rooms: () => new Map([...rooms].map(([name, members]) => [name, [...members.keys()]])),
  };
}
