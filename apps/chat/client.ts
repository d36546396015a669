/**
 * The chat client for Node (the terminal client and the tests): one connection (WebSocket, SSE + POST or long polling:
 * link.ts), hello, rooms, and on a lost connection a reconnect that rejoins each room from the last offset it saw
 * (`since`) and resends messages not yet stored with the same cid (the broker stores a resend once). `setTransport`
 * switches the transport live the same way. Events come out of `on(listener)` in order, each stored event once.
 * DMs: relay only (`dm`, answered by `dm-ack`); this client has no WebRTC, so it declines a page's offer with `bye` and
 * the page falls back to the relay at once.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';
import { checkInt, checkString, InvalidOptionError, withDefaults } from '../../core/options.ts';
import { tlsClientOptions } from '../../core/tls/index.ts';
import { CHAT_TRANSPORTS, openLink, type ChatLink, type ChatTransport, type LinkTls } from './link.ts';
import { ChatCodes, ChatError, type ChatEvent, type ClientMessage, type ServerMessage } from './protocol.ts';

export type { ChatTransport } from './link.ts';

export const CHAT_CLIENT_DEFAULTS = {
  /** Reconnect after a lost connection (backoff from reconnectMinMs doubling to reconnectMaxMs). */
  reconnect: true,
  reconnectMinMs: 100,
  reconnectMaxMs: 5000,
  /** How long connect() and request() wait (and a DM waits for its receipt). */
  timeoutMs: 10_000,
  /** ws (default), sse (SSE + POST) or poll (long polling). */
  transport: 'ws' as ChatTransport,
  /** Answer a DM offer (WebRTC) with bye: this client has no WebRTC of its own (apps/chat/dm-peer.ts adds one). */
  declineDmOffers: true,
  /** Send a password or token over ws:// (no TLS). Default false: connectChat refuses before anything is sent. */
  allowInsecureAuth: false,
};

/** DM messages kept while reconnecting (the oldest goes past it). */
const MAX_DM_OUTBOX = 1000;

export interface ChatClientOptions extends Partial<typeof CHAT_CLIENT_DEFAULTS> {
  /**
   * ws://host:port/ws, or wss:// for TLS; the page's http:// / https://host:port/ is taken too (its /ws). Every
   * transport follows the scheme: over wss:// the WebSocket, SSE + POST and long polling are all https.
   */
  url: string;
  /**
   * wss:// / https://: the CA certificate(s) (PEM) the server's certificate must be signed by. Default: wirelab's local
   * CA (core/tls, `<data dir>/tls/ca.pem`, what `tls: true` servers use). Verification is never turned off: a server
   * whose certificate does not verify is refused with WL_ERR_CHAT_TLS.
   */
  ca?: string | Buffer | (string | Buffer)[];
  /** The name to use; with a token it may be left out (the token's user is the name: `client.name` after connect). */
  name?: string;
  /** A registered name's password (the server's `users`); never traced, sent only in hello. */
  password?: string;
  /** A token instead of a password. */
  token?: string;
}

interface RoomState {
  /** The highest stored offset received (the `since` of a rejoin). */
  last: number;
  events: ChatEvent[];
  online: string[];
  owner: string | undefined;
}

export interface ChatClient {
  readonly name: string;
  readonly rooms: ReadonlyMap<string, RoomState>;
  /** Reconnects so far. */
  readonly reconnects: number;
  /** Stored events received twice (dropped here; a correct server sends none). */
  readonly duplicates: number;
  /** Every server message, in order (after this client's bookkeeping). */
  on(listener: (m: ServerMessage) => void): () => void;
  /** Joins and resolves once the room's history up to now has arrived (`synced`). */
  join(room: string): Promise<RoomState>;
  leave(room: string): void;
  /** Resolves with the stored offset when the broker has stored it (the `sent` receipt). Rejects with a ChatError. */
  send(room: string, text: string): Promise<number>;
  raw(m: ClientMessage): void;
  /** Resolves with the first server message `match` accepts, or rejects after timeoutMs. */
  waitFor<T extends ServerMessage>(match: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  /** The underlying WebSocket, on the ws transport (tests reset it). */
  readonly socket: WebSocket;
  readonly transport: ChatTransport;
  /** HTTP requests made so far, over every connection (a WebSocket's upgrade is one). */
  readonly requests: number;
  /** Switches the transport live: the new connection rejoins from the last offset seen (no gap, no duplicate). */
  setTransport(transport: ChatTransport): Promise<void>;
  /** A DM through the server (relay); resolves with its round trip in ms when the receiver's dm-ack is back. */
  dm(to: string, text: string): Promise<number>;
  close(): void;
}

/** ws(s)://host:port/path as given; http(s)://host:port[/] (the page's address) becomes ws(s)://host:port/ws. */
export function chatEndpoint(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'ws:' || u.protocol === 'wss:') return url;
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidOptionError('url', 'ws://, wss://, http:// or https://HOST:PORT', url);
  return `${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}${u.pathname === '/' ? '/ws' : u.pathname}`;
}

export async function connectChat(options: ChatClientOptions): Promise<ChatClient> {
  const o = withDefaults(CHAT_CLIENT_DEFAULTS, options);
  checkString('url', o.url);
  try {
    o.url = chatEndpoint(o.url);
  } catch (err) {
    if (err instanceof InvalidOptionError) throw err;
    throw new InvalidOptionError('url', 'ws://, wss://, http:// or https://HOST:PORT', o.url);
  }
  const secure = o.url.startsWith('wss:');
  // A CA with a ws:// url would trust nothing: the caller meant TLS, so say so rather than connect in clear.
  if (o.ca !== undefined && !secure) throw new InvalidOptionError('ca', 'given only with a wss:// or https:// url', '(certificate)');
  if (o.ca !== undefined && (Array.isArray(o.ca) ? o.ca : [o.ca]).some((c) => (typeof c !== 'string' && !Buffer.isBuffer(c)) || c.length === 0)) throw new InvalidOptionError('ca', 'PEM text (a string or Buffer, or a list of them)', '(certificate)');
  let tls: LinkTls | undefined;
  if (secure) tls = { ca: o.ca ?? (await tlsClientOptions()).ca, minVersion: 'TLSv1.2' };
  if (o.name !== undefined || o.token === undefined) checkString('name', o.name);
  if (o.password !== undefined) checkString('password', o.password);
  if (o.token !== undefined) checkString('token', o.token);
  if (o.password !== undefined && o.token !== undefined) throw new InvalidOptionError('token', 'a password or a token, not both', '(redacted)');
  if ((o.password !== undefined || o.token !== undefined) && !/^(wss|https):/i.test(o.url) && !o.allowInsecureAuth) {
    throw new ChatError(ChatCodes.AUTH, `a ${o.password !== undefined ? 'password' : 'token'} would go over ${new URL(o.url).protocol}// without TLS: refused (allowInsecureAuth allows it)`);
  }
  const hello: ClientMessage = { type: 'hello', ...(o.name !== undefined ? { name: o.name } : {}), ...(o.password !== undefined ? { password: o.password } : {}), ...(o.token !== undefined ? { token: o.token } : {}) };
  let name = o.name ?? '';
  checkInt('timeoutMs', o.timeoutMs, 1, 3_600_000);
  if (!CHAT_TRANSPORTS.includes(o.transport)) throw new InvalidOptionError('transport', 'ws, sse or poll', o.transport);
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const rooms = new Map<string, RoomState>();
  const pending = new Map<string, { room: string; text: string; resolve(n: number): void; reject(e: Error): void }>();
  let link!: ChatLink;
  /** Requests of the links that ended. */
  let requestsBefore = 0;
  const ended = new WeakSet<ChatLink>();
  let transport = o.transport;
  let switching: Promise<void> = Promise.resolve();
  const dms = new Map<string, { at: number; resolve(ms: number): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  let closed = false;
  /** The server refused the hello (name or credentials): reconnecting with the same would be refused again. */
  let refused = false;
  let reconnects = 0;
  let duplicates = 0;
  let attempts = 0;
  let seq = 0;
  const cidBase = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

  const write = (m: ClientMessage): void => link.send(m);
  // DM messages written while no connection is welcomed (a reconnect, a transport switch) wait here; rooms and sends
  // are rejoined and resent on welcome anyway.
  let ready = false;
  const outbox: ClientMessage[] = [];
  const writeDm = (m: ClientMessage): void => {
    if (ready) return write(m);
    if (outbox.length >= MAX_DM_OUTBOX) outbox.shift();
    outbox.push(m);
  };

  const onMessage = (m: ServerMessage): void => {
    if (m.type === 'welcome') {
      ready = true;
      name = m.name;
      for (const [room, r] of rooms) write({ type: 'join', room, ...(r.last >= 0 ? { since: r.last } : {}) });
      for (const [cid, p] of pending) write({ type: 'send', room: p.room, text: p.text, cid });
      // After the joins: the server relays a DM only between users in a shared room.
      for (const x of outbox.splice(0)) write(x);
    } else if (m.type === 'joined') {
      const r = rooms.get(m.room);
      if (r) {
        r.online = m.online;
        r.owner = m.owner;
        // Not recovered: the server starts over at `from`; what this client holds from there on is replaced.
        if (!m.recovered && r.last >= m.from) {
          r.events = r.events.filter((e) => e.offset < m.from);
          r.last = m.from - 1;
        }
      }
    } else if (m.type === 'event') {
      const r = rooms.get(m.room);
      if (r) {
        if (m.offset <= r.last) {
          duplicates++;
          return;
        }
        r.last = m.offset;
        r.events.push(m);
      }
    } else if (m.type === 'presence' || m.type === 'who') {
      const r = rooms.get(m.room);
      if (r) r.online = m.online;
    } else if (m.type === 'sent') {
      pending.get(m.cid)?.resolve(m.offset);
      pending.delete(m.cid);
    } else if (m.type === 'left') {
      rooms.delete(m.room);
    } else if (m.type === 'dm') {
      writeDm({ type: 'dm-ack', to: m.from, id: m.id });
    } else if (m.type === 'dm-ack') {
      const d = dms.get(m.id);
      dms.delete(m.id);
      if (d) clearTimeout(d.timer);
      d?.resolve(performance.now() - d.at);
    } else if (m.type === 'signal' && m.kind === 'offer' && o.declineDmOffers) {
      // No WebRTC here: decline at once, so the page uses the relay without waiting for its ICE timeout.
      writeDm({ type: 'signal', to: m.from, session: m.session, kind: 'bye' });
    } else if (m.type === 'error' && m.cid !== undefined && dms.has(m.cid)) {
      const d = dms.get(m.cid)!;
      dms.delete(m.cid);
      clearTimeout(d.timer);
      d.reject(new ChatError(m.code, m.message, m.limit ? { limit: m.limit } : {}));
    } else if (m.type === 'error' && m.cid !== undefined && m.code !== ChatCodes.BROKER) {
      pending.get(m.cid)?.reject(new ChatError(m.code, m.message, { ...(m.limit ? { limit: m.limit } : {}), ...(m.retryAfterMs !== undefined ? { retryAfterMs: m.retryAfterMs } : {}) }));
      pending.delete(m.cid);
    }
    events.emit('message', m);
  };

  const open = (): Promise<void> =>
    new Promise((resolve, reject) => {
      let welcomed = false;
      ready = false;
      const l: ChatLink = openLink(transport, o.url, {
        open: () => l.send(hello),
        message: (m) => {
          // A link being replaced (setTransport) passes on only DMs and signals (never stored); the new one replays the rest.
          if (link !== l) {
            if (m.type === 'dm' || m.type === 'dm-ack' || m.type === 'signal') onMessage(m);
            return;
          }
          if (!welcomed) {
            if (m.type === 'error') {
              reject(new ChatError(m.code, m.message));
              // A refused hello (a wrong password): no retry with the same credentials.
              if (m.code === ChatCodes.AUTH || m.code === ChatCodes.NAME) {
                refused = true;
                l.close();
              }
              return;
            }
            if (m.type === 'welcome') {
              welcomed = true;
              attempts = 0;
              resolve();
            }
          }
          onMessage(m);
        },
        closed: (err) => {
          requestsBefore += l.requests;
          ended.add(l);
          if (!welcomed) reject(err ?? new ChatError(ChatCodes.STATE, 'closed before welcome'));
          if (closed || refused || link !== l) return;
          ready = false;
          events.emit('disconnected');
          if (!o.reconnect) return;
          const retry = (): void => {
            if (closed) return;
            const delay = Math.min(o.reconnectMaxMs, o.reconnectMinMs * 2 ** attempts++);
            setTimeout(() => {
              if (closed || link !== l) return;
              reconnects++;
              open().catch(() => retry());
            }, delay).unref();
          };
          retry();
        },
      }, tls);
      link = l;
    });

  const timer = setTimeout(() => link?.close(), o.timeoutMs);
  try {
    await open();
  } catch (err) {
    closed = true;
    link?.close();
    throw err;
  } finally {
    clearTimeout(timer);
  }

  function waitFor(match: (m: ServerMessage) => boolean, timeoutMs = o.timeoutMs): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        events.off('message', on);
        reject(new ChatError('WL_ERR_TIMEOUT', `no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: ServerMessage): void => {
        if (!match(m)) return;
        clearTimeout(t);
        events.off('message', on);
        resolve(m);
      };
      events.on('message', on);
    });
  }

  const client: ChatClient = {
    get name() {
      return name;
    },
    rooms,
    get reconnects() {
      return reconnects;
    },
    get duplicates() {
      return duplicates;
    },
    get socket() {
      return link.ws!;
    },
    get transport() {
      return transport;
    },
    get requests() {
      return requestsBefore + (ended.has(link) ? 0 : link.requests);
    },
    setTransport(t) {
      if (!CHAT_TRANSPORTS.includes(t)) return Promise.reject(new InvalidOptionError('transport', 'ws, sse or poll', t));
      // One switch at a time: each waits for the one before it to be welcomed (or to fail).
      switching = switching.then(async () => {
        transport = t;
        // The old connection stays until the new one is welcomed and what it had to send has left.
        const old = link;
        try {
          await open();
        } finally {
          await old.drained(2000);
          old.close();
        }
      });
      const done = switching;
      switching = switching.catch(() => undefined);
      return done;
    },
    dm(to, text) {
      const id = randomBytes(9).toString('base64url');
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          dms.delete(id);
          reject(new ChatError('WL_ERR_TIMEOUT', `no receipt from ${to} within ${o.timeoutMs} ms`));
        }, o.timeoutMs);
        dms.set(id, { at: performance.now(), resolve, reject, timer });
        writeDm({ type: 'dm', to, id, text });
      });
    },
    on(listener) {
      events.on('message', listener);
      return () => events.off('message', listener);
    },
    async join(room) {
      if (!rooms.has(room)) rooms.set(room, { last: -1, events: [], online: [], owner: undefined });
      const done = waitFor((m) => (m.type === 'synced' && m.room === room) || (m.type === 'error' && m.room === room));
      write({ type: 'join', room });
      const m = await done;
      if (m.type === 'error') {
        rooms.delete(room);
        throw new ChatError(m.code, m.message, m.limit ? { limit: m.limit } : {});
      }
      return rooms.get(room)!;
    },
    leave(room) {
      write({ type: 'leave', room });
      rooms.delete(room);
    },
    send(room, text) {
      const cid = `${cidBase}-${seq++}`;
      return new Promise<number>((resolve, reject) => {
        pending.set(cid, { room, text, resolve, reject });
        write({ type: 'send', room, text, cid });
      });
    },
    raw: (m) => (m.type === 'dm' || m.type === 'dm-ack' || m.type === 'signal' ? writeDm(m) : write(m)),
    waitFor: waitFor as ChatClient['waitFor'],
    close() {
      closed = true;
      for (const p of pending.values()) p.reject(new ChatError('WL_ERR_CLOSED', 'client closed'));
      pending.clear();
      for (const d of dms.values()) {
        clearTimeout(d.timer);
        d.reject(new ChatError('WL_ERR_CLOSED', 'client closed'));
      }
      dms.clear();
      link.close();
    },
  };
  return client;
}
