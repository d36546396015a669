import { checkBoolean, checkInt, checkOneOf, InvalidOptionError, withDefaults } from '../../../core/options.ts';
import type { TlsSettings } from '../../../core/tls/index.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { Broker } from '../../../pubsub/broker/types.ts';
import type { ChatClusterOptions } from './cluster.ts';
import { checkChatUsers, type ChatUser } from './auth.ts';

/** Every limit of the chat server, with its default (README "## Chat"). */
export const CHAT_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  /** Longest user name, in characters. */
  maxNameChars: 32,
  // ---- who may join (server/auth.ts; accounts are the `users` option) ----
  /** Names that are not in `users` may join without a password (guests). false: every user needs a password or token. */
  allowGuests: true,
  /** Accept a password or token on a connection without TLS (plain http: set it to use accounts; with `tls` not needed). */
  allowInsecureAuth: false,
  /** Refused hellos (bad credentials) one connection may send before it is closed with 1008. */
  maxAuthFailures: 3,
  /** Longest message text, in characters (an edit too). */
  maxMessageChars: 4000,
  /** Largest WebSocket frame, in bytes: a bigger one is closed with 1009. */
  maxFrameBytes: 32 * 1024,
  /** Rooms one connection may be in at once. */
  maxRoomsPerConnection: 32,
  /** Rooms the server keeps live at once (a join of a new one past it is refused). */
  maxRooms: 1000,
  /** WebSocket connections at once (one more: 503 at the handshake). */
  maxConnections: 2000,
  /** Stored events a fresh join gets (no `since`). */
  historyOnJoin: 50,
  /** Most events one `history` answer holds. */
  maxHistoryPage: 200,
  /** Most events a reconnect replays from `since`; more missed: `recovered: false` and the newest historyOnJoin. */
  maxRecoverEvents: 2000,
  /** Messages (send, edit, delete) per user: a token bucket refilled at ratePerSecond, holding rateBurst. */
  ratePerSecond: 5,
  rateBurst: 10,
  /** Frames of any kind from one connection per second; past it: an error, counted as a bad frame. */
  maxFramesPerSecond: 60,
  /** Bad frames (malformed, refused by a limit, flood) one connection may send before it is closed with 1008. */
  maxBadFrames: 20,
  /** Bytes queued to one connection before it is dropped as too slow (1013); it can reconnect and recover. */
  maxBufferedBytes: 4 * 1024 * 1024,
  /** Typing indicators (on) relayed per member at most once per this long (a typing flood is not multiplied by the room). */
  typingIntervalMs: 1000,
  /** How long a kicked user may not rejoin the room. */
  kickBanMs: 60_000,
  /** Long polling: how long a GET /poll waits for a message before answering []. */
  pollWaitMs: 25_000,
  /** Long polling: a connection not polled for this long is closed (the user leaves). */
  pollIdleMs: 30_000,
  /** Ping every this long; a peer that has not answered is dropped (0: off). */
  heartbeatMs: 30_000,
  /**
   * Multi-node (`cluster`): each node says it is alive every presenceLeaseMs / 3; one not heard from for this long
   * (killed, or cut off from NATS) is dropped and its users leave the other nodes' presence.
   */
  presenceLeaseMs: 6000,
  // ---- direct messages (server/dm.ts) ----
  /** Largest SDP in a DM offer / answer, in bytes. */
  maxSdpBytes: 16 * 1024,
  /** Largest ICE candidate line in a DM signal, in bytes. */
  maxCandidateBytes: 1024,
  /** DM sessions one user may have offered and not yet had answered (a flood of offers is refused past it). */
  maxDmSessionsPerUser: 8,
  /** A DM session's signaling is relayed for this long after its offer (ICE is done well before). */
  dmSessionTtlMs: 30_000,
  /** How long a page waits for the DM data channel to open before it falls back to the relay (told in welcome). */
  dmIceTimeoutMs: 10_000,
  /**
   * A page that fell back to the relay tries peer to peer again after this long, doubling each time (told in welcome;
   * 0: never).
   */
  dmRetryMs: 15_000,
  /** How many times a page retries peer to peer after falling back to the relay (told in welcome). */
  dmRetries: 3,
};

export interface ChatServerOptions extends Partial<typeof CHAT_DEFAULTS> {
  /**
   * Accounts (the pub/sub layer's users: `{ name, passwordHash }` with a hash from hashPassword, or `{ name, token }`):
   * a listed name can be used only with its password or token. Default [] (everyone is a guest).
   */
  users?: ChatUser[];
  /**
   * Serve https:// and wss:// with the local certificate (core/tls: true, or its settings: versions, keylogFile,
   * certDir): the page, the WebSocket, SSE + POST and long polling all go over TLS, and a password or token is accepted
   * without allowInsecureAuth. Default off (plain http on loopback).
   */
  tls?: TlsSettings | boolean;
  /** The broker to put rooms on. Default: a broker of its own on `dataDir` (closed with the server). */
  broker?: Broker;
  /** Where a broker of its own keeps the log (default: in memory). */
  dataDir?: string | null;
  /**
   * Multi-node: share presence, typing and receipts with the other chat servers on this NATS cluster (server/cluster.ts).
   * Give it with a broker on the JetStream engine of the same cluster, so rooms (streams) are shared too. Default: none.
   */
  cluster?: ChatClusterOptions;
  tracer?: Tracer;
}

export type ResolvedChatOptions = ReturnType<typeof resolveChatOptions>;

export function resolveChatOptions(options: ChatServerOptions) {
  const o = withDefaults(CHAT_DEFAULTS, options);
  checkInt('port', o.port, 0, 65535);
  checkInt('maxNameChars', o.maxNameChars, 1, 1000);
  checkBoolean('allowGuests', o.allowGuests);
  checkBoolean('allowInsecureAuth', o.allowInsecureAuth);
  checkInt('maxAuthFailures', o.maxAuthFailures, 1, 1000);
  const users = checkChatUsers(options.users ?? [], o.maxNameChars);
  if (!o.allowGuests && users.length === 0) throw new InvalidOptionError('allowGuests', 'true when no users are configured (nobody could join)', false);
  checkInt('maxMessageChars', o.maxMessageChars, 1, 1_000_000);
  checkInt('maxFrameBytes', o.maxFrameBytes, 256, 16 * 1024 * 1024);
  checkInt('maxRoomsPerConnection', o.maxRoomsPerConnection, 1, 100_000);
  checkInt('maxRooms', o.maxRooms, 1, 1_000_000);
  checkInt('maxConnections', o.maxConnections, 1, 1_000_000);
  checkInt('historyOnJoin', o.historyOnJoin, 0, 10_000);
  checkInt('maxHistoryPage', o.maxHistoryPage, 1, 10_000);
  checkInt('maxRecoverEvents', o.maxRecoverEvents, 0, 1_000_000);
  checkInt('ratePerSecond', o.ratePerSecond, 1, 1_000_000);
  checkInt('rateBurst', o.rateBurst, 1, 1_000_000);
  checkInt('maxFramesPerSecond', o.maxFramesPerSecond, 1, 1_000_000);
  checkInt('maxBadFrames', o.maxBadFrames, 0, 1_000_000);
  checkInt('maxBufferedBytes', o.maxBufferedBytes, 1024, 1024 * 1024 * 1024);
  checkInt('typingIntervalMs', o.typingIntervalMs, 0, 60_000);
  checkInt('kickBanMs', o.kickBanMs, 0, 86_400_000);
  checkInt('pollWaitMs', o.pollWaitMs, 1, 600_000);
  checkInt('pollIdleMs', o.pollIdleMs, 1, 3_600_000);
  if (o.pollIdleMs <= o.pollWaitMs) throw new InvalidOptionError('pollIdleMs', 'more than pollWaitMs', o.pollIdleMs);
  checkInt('heartbeatMs', o.heartbeatMs, 0, 3_600_000);
  checkInt('presenceLeaseMs', o.presenceLeaseMs, 150, 3_600_000);
  checkInt('maxSdpBytes', o.maxSdpBytes, 256, 1024 * 1024);
  checkInt('maxCandidateBytes', o.maxCandidateBytes, 64, 64 * 1024);
  checkInt('maxDmSessionsPerUser', o.maxDmSessionsPerUser, 1, 10_000);
  checkInt('dmSessionTtlMs', o.dmSessionTtlMs, 1000, 3_600_000);
  checkInt('dmIceTimeoutMs', o.dmIceTimeoutMs, 100, 600_000);
  checkInt('dmRetryMs', o.dmRetryMs, 0, 3_600_000);
  checkInt('dmRetries', o.dmRetries, 0, 100);
  const tls = checkTls(options.tls);
  return { ...o, users, tls };
}

/** `tls`: true (the local certificate, defaults), false / absent (plain http), or TlsSettings. */
export function checkTls(tls: unknown): TlsSettings | false {
  if (tls === undefined || tls === false) return false;
  if (tls === true) return {};
  if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) throw new InvalidOptionError('tls', 'true, false or TLS settings { minVersion, maxVersion, keylogFile, certDir }', tls);
  const known = ['minVersion', 'maxVersion', 'keylogFile', 'certDir'];
  const unknown = Object.keys(tls).find((k) => !known.includes(k));
  if (unknown !== undefined) throw new InvalidOptionError(`tls.${unknown}`, `one of ${known.join(', ')}`, (tls as Record<string, unknown>)[unknown]);
  const t = tls as TlsSettings;
  for (const k of ['minVersion', 'maxVersion'] as const) if (t[k] !== undefined) checkOneOf(`tls.${k}`, t[k], ['1.2', '1.3']);
  for (const k of ['keylogFile', 'certDir'] as const) if (t[k] !== undefined && (typeof t[k] !== 'string' || t[k] === '')) throw new InvalidOptionError(`tls.${k}`, 'a non-empty path', t[k]);
  return t;
}

/** The limits a client is told in `welcome`. */
export function publicLimits(o: ResolvedChatOptions): Record<string, number> {
  const { maxNameChars, maxMessageChars, maxFrameBytes, maxRoomsPerConnection, historyOnJoin, maxHistoryPage, ratePerSecond, rateBurst } = o;
  const { maxSdpBytes, maxCandidateBytes, dmIceTimeoutMs, dmRetryMs, dmRetries } = o;
  return { maxNameChars, maxMessageChars, maxFrameBytes, maxRoomsPerConnection, historyOnJoin, maxHistoryPage, ratePerSecond, rateBurst, maxSdpBytes, maxCandidateBytes, dmIceTimeoutMs, dmRetryMs, dmRetries };
}
