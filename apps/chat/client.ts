/**
 * The chat client for Node (the terminal client and the tests): one WebSocket, hello, rooms, and on a lost connection
 * a reconnect that rejoins each room from the last offset it saw (`since`) and resends messages not yet stored with the
 * same cid (the broker stores a resend once). Events come out of `on(listener)` in order, each stored event once.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { checkInt, checkString, withDefaults } from '../../core/options.ts';
import { ChatCodes, ChatError, type ChatEvent, type ClientMessage, type ServerMessage } from './protocol.ts';

export const CHAT_CLIENT_DEFAULTS = {
  /** Reconnect after a lost connection (backoff from reconnectMinMs doubling to reconnectMaxMs). */
  reconnect: true,
  reconnectMinMs: 100,
  reconnectMaxMs: 5000,
  /** How long connect() and request() wait. */
  timeoutMs: 10_000,
};

export interface ChatClientOptions extends Partial<typeof CHAT_CLIENT_DEFAULTS> {
  /** ws://host:port/ws */
  url: string;
  name: string;
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
  /** The underlying socket (tests reset it). */
  readonly socket: WebSocket;
  close(): void;
}

export async function connectChat(options: ChatClientOptions): Promise<ChatClient> {
  const o = withDefaults(CHAT_CLIENT_DEFAULTS, options);
  checkString('url', o.url);
  checkString('name', o.name);
  checkInt('timeoutMs', o.timeoutMs, 1, 3_600_000);
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const rooms = new Map<string, RoomState>();
  const pending = new Map<string, { room: string; text: string; resolve(n: number): void; reject(e: Error): void }>();
  let socket!: WebSocket;
  let closed = false;
  let reconnects = 0;
  let duplicates = 0;
  let attempts = 0;
  let seq = 0;
  const cidBase = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

  const write = (m: ClientMessage): void => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(m));
  };

  const onMessage = (m: ServerMessage): void => {
    if (m.type === 'welcome') {
      for (const [room, r] of rooms) write({ type: 'join', room, ...(r.last >= 0 ? { since: r.last } : {}) });
      for (const [cid, p] of pending) write({ type: 'send', room: p.room, text: p.text, cid });
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
    } else if (m.type === 'error' && m.cid !== undefined && m.code !== ChatCodes.BROKER) {
      pending.get(m.cid)?.reject(new ChatError(m.code, m.message, { ...(m.limit ? { limit: m.limit } : {}), ...(m.retryAfterMs !== undefined ? { retryAfterMs: m.retryAfterMs } : {}) }));
      pending.delete(m.cid);
    }
    events.emit('message', m);
  };

  const open = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(o.url);
      socket = ws;
      let welcomed = false;
      ws.on('error', (err) => {
        if (!welcomed) reject(err);
      });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', name: o.name } satisfies ClientMessage)));
      ws.on('message', (data) => {
        let m: ServerMessage;
        try {
          m = JSON.parse(data.toString()) as ServerMessage;
        } catch {
          return;
        }
        if (!welcomed) {
          if (m.type === 'error') return reject(new ChatError(m.code, m.message));
          if (m.type === 'welcome') {
            welcomed = true;
            attempts = 0;
            resolve();
          }
        }
        onMessage(m);
      });
      ws.on('close', () => {
        if (!welcomed) reject(new ChatError(ChatCodes.STATE, 'closed before welcome'));
        if (closed || socket !== ws) return;
        events.emit('disconnected');
        if (!o.reconnect) return;
        const retry = (): void => {
          if (closed) return;
          const delay = Math.min(o.reconnectMaxMs, o.reconnectMinMs * 2 ** attempts++);
          setTimeout(() => {
            if (closed) return;
            reconnects++;
            open().catch(() => retry());
          }, delay).unref();
        };
        retry();
      });
    });

  const timer = setTimeout(() => socket?.terminate(), o.timeoutMs);
  try {
    await open();
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
    name: o.name,
    rooms,
    get reconnects() {
      return reconnects;
    },
    get duplicates() {
      return duplicates;
    },
    get socket() {
      return socket;
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
    raw: write,
    waitFor: waitFor as ChatClient['waitFor'],
    close() {
      closed = true;
      for (const p of pending.values()) p.reject(new ChatError('WL_ERR_CLOSED', 'client closed'));
      pending.clear();
      socket.close(1000);
    },
  };
  return client;
}
