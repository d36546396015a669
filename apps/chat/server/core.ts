/**
 * The chat server's connections, independent of the transport: a transport (server/index.ts: WebSocket;
 * server/fallbacks.ts: SSE + POST, long polling) gives it a `ChatConn` per client and feeds it text frames. Here: the
 * frame limits (flood, bad frames), hello and sign-in (server/auth.ts), the dispatch of each message to the rooms
 * (server/rooms.ts: joins, recovery, writes, history), presence (server/nodes.ts), moderation (server/moderation.ts)
 * and DMs (server/dm.ts), and the answers (`ChatOut`: send, error, bad).
 */
import { PubsubError } from '../../../core/errors.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { Broker, Session } from '../../../pubsub/broker/types.ts';
import { ChatCodes, nameProblem, parseClientMessage, type ChatCode, type ClientMessage, type ServerMessage } from '../protocol.ts';
import { publicLimits, type ResolvedChatOptions } from './options.ts';
import type { ChatCluster } from './cluster.ts';
import type { ChatConn, ChatOut, ChatStats, Client, ErrorExtra } from './state.ts';
import { DmRouter, isDmMessage } from './dm.ts';
import { ChatAuth, type AuthResult } from './auth.ts';
import { Moderation } from './moderation.ts';
import { ChatRooms } from './rooms.ts';

export type { ChatConn, ChatStats, Transport } from './state.ts';

export class ChatCore {
  readonly stats: ChatStats = { connections: 0, rooms: 0, messages: 0, messageBytes: 0, eventsOut: 0, typingRelayed: 0, errors: {}, closedBadFrames: 0 };
  readonly #clients = new Set<Client>();
  readonly #out: ChatOut = {
    send: (c, m) => this.#send(c, m),
    error: (c, code, text, extra) => this.#error(c, code, text, extra),
    bad: (c) => this.#bad(c),
  };
  /** Rooms, their members, history and writes (server/rooms.ts), with presence (server/nodes.ts). */
  readonly #rooms: ChatRooms;
  /** Mute and kick (server/moderation.ts). */
  readonly #moderation: Moderation;
  /** Direct messages: WebRTC signaling and the relay fallback (server/dm.ts). */
  readonly dm: DmRouter;
  /** Who may use which name (server/auth.ts). */
  readonly auth: ChatAuth;

  constructor(
    readonly broker: Broker,
    readonly session: Session,
    readonly o: ResolvedChatOptions,
    readonly tracer: Tracer,
    cluster?: ChatCluster,
  ) {
    this.auth = new ChatAuth(o.users, o.allowGuests, o.allowInsecureAuth);
    this.#moderation = new Moderation(session, o, this.#out, { members: (room) => this.#rooms.members(room), leave: (member, reason) => this.#rooms.leave(member, reason) });
    const remoteDm = (node: string, from: string, m: unknown): void => this.dm.remote(node, from, m);
    this.#rooms = new ChatRooms({ broker, session, o, tracer, out: this.#out, stats: this.stats, moderation: this.#moderation, cluster, remoteDm });
    this.dm = new DmRouter(o, tracer, this.#out, cluster);
  }

  async start(): Promise<void> {
    await this.#rooms.start();
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.conn.close(1001, 'server closing');
    await this.#rooms.close();
  }

  /** A new connection: returns what the transport calls with each text frame and when the connection ends. */
  open(conn: ChatConn): { frame(text: string): void; closed(): void } {
    const client: Client = { conn, name: undefined, rooms: new Map(), windowStart: Date.now(), framesInWindow: 0, bad: 0, authFailures: 0, checking: false, waiting: [], closed: false };
    this.#clients.add(client);
    this.stats.connections++;
    return {
      frame: (text) => this.#frame(client, text),
      closed: () => this.#closed(client),
    };
  }

  // ---- frames ----

  #frame(client: Client, text: string): void {
    if (client.closed) return;
    const now = Date.now();
    if (now - client.windowStart >= 1000) {
      client.windowStart = now;
      client.framesInWindow = 0;
    }
    if (++client.framesInWindow > this.o.maxFramesPerSecond) {
      // One error per window, not one per frame: a flood is not answered with a flood.
      if (client.framesInWindow === this.o.maxFramesPerSecond + 1) this.#error(client, ChatCodes.FLOOD, `more than ${this.o.maxFramesPerSecond} frames a second`, { limit: 'maxFramesPerSecond' });
      this.#bad(client);
      return;
    }
    if (client.checking) {
      // A password being checked: later frames wait for the answer (at most maxFramesPerSecond of them).
      if (client.waiting.length >= this.o.maxFramesPerSecond) return this.#bad(client);
      client.waiting.push(text);
      return;
    }
    const m = parseClientMessage(text);
    if ('invalid' in m) {
      this.#error(client, ChatCodes.INVALID, m.invalid);
      this.#bad(client);
      return;
    }
    this.tracer.emit('chat', client.conn.cid, '>', m.type, () => `${m.type} ${'room' in m ? m.room : ''}`.trim());
    if (m.type === 'ping') return this.#send(client, { type: 'pong', t: m.t });
    if (m.type === 'hello') {
      const r = this.#hello(client, m);
      if (r instanceof Promise) r.catch((err: unknown) => this.#error(client, ChatCodes.AUTH, `the check failed: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    if (client.name === undefined) return this.#error(client, ChatCodes.STATE, 'say hello with a name first');
    if (isDmMessage(m)) return this.dm.handle(client, client.name, m);
    const fail = (err: unknown): void => {
      const pe = err instanceof PubsubError ? err : undefined;
      this.#error(client, ChatCodes.BROKER, `the broker refused: ${err instanceof Error ? err.message : String(err)}`, {
        ...('room' in m ? { room: m.room } : {}),
        ...(m.type === 'send' ? { cid: m.cid } : {}),
        ...(pe?.limit ? { limit: pe.limit } : {}),
      });
    };
    try {
      const r = this.#dispatch(client, client.name, m);
      if (r instanceof Promise) r.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  #dispatch(client: Client, name: string, m: Exclude<ClientMessage, { type: 'ping' | 'hello' | 'signal' | 'dm' | 'dm-ack' }>): void | Promise<void> {
    if (m.type === 'join') return this.#rooms.join(client, name, m.room, m.since);
    const member = client.rooms.get(m.room);
    if (!member) return this.#error(client, ChatCodes.STATE, `not in room ${m.room}: join it first`, { room: m.room });
    const room = member.room;
    switch (m.type) {
      case 'leave':
        return this.#rooms.leave(member, 'left');
      case 'send':
      case 'edit':
      case 'delete':
        return this.#rooms.write(client, name, room, m);
      case 'typing':
        if (m.on) {
          const now = performance.now();
          if (now - member.typingAt < this.o.typingIntervalMs) return;
          member.typingAt = now;
        } else member.typingAt = -Infinity;
        this.stats.typingRelayed++;
        return this.#rooms.presence.typing(room, name, m.on, client);
      case 'receipt':
        return this.#rooms.presence.receipt(room, name, m.offset, m.state, client);
      case 'history':
        return this.#rooms.history(client, room, m.before, m.limit ?? this.o.historyOnJoin);
      case 'who':
        return this.#send(client, { type: 'who', room: room.name, online: this.#rooms.presence.online(room), owner: room.owner });
      case 'mute':
      case 'kick':
        return this.#moderation.moderate(client, name, room, m);
    }
  }

  #hello(client: Client, hello: Extract<ClientMessage, { type: 'hello' }>): void | Promise<void> {
    if (client.name !== undefined || client.checking) return this.#error(client, ChatCodes.STATE, `already hello'd${client.name === undefined ? '' : ` as ${client.name}`}`);
    const problem = hello.name === undefined ? undefined : nameProblem(hello.name, this.o.maxNameChars);
    if (problem) {
      this.#error(client, ChatCodes.NAME, problem, problem.includes('maxNameChars') ? { limit: 'maxNameChars' } : {});
      return this.#bad(client);
    }
    // A guest is answered at once, so a client may send hello and join in one go; a password takes a scrypt check,
    // and the frames that arrive meanwhile wait (at most maxFramesPerSecond of them) and are handled after it.
    const guest = this.auth.guest(hello);
    if (guest) return this.#helloDone(client, hello, guest);
    client.checking = true;
    return this.auth.check(hello, client.conn.secure, client.conn.peer).then((who) => {
      client.checking = false;
      this.#helloDone(client, hello, who);
      for (const text of client.waiting.splice(0)) this.#frame(client, text);
    }, (err: unknown) => {
      client.checking = false;
      client.waiting.length = 0;
      throw err;
    });
  }

  #helloDone(client: Client, hello: Extract<ClientMessage, { type: 'hello' }>, who: AuthResult): void {
    if (client.closed) return;
    if (!who.ok) {
      // The name is traced, never the password or token.
      this.tracer.emit('chat', client.conn.cid, '*', 'auth-refused', () => `hello as ${hello.name ?? '(token)'} refused: ${who.message}`);
      this.#error(client, who.code as ChatCode, who.message);
      if (who.code !== ChatCodes.AUTH) return this.#bad(client);
      if (++client.authFailures >= this.o.maxAuthFailures) {
        client.conn.close(1008, `${this.o.maxAuthFailures} refused hellos (maxAuthFailures)`);
        this.#closed(client);
      }
      return;
    }
    client.name = who.name;
    if (who.method !== 'guest') this.tracer.emit('chat', client.conn.cid, '*', 'auth', () => `${who.name} signed in with a ${who.method}`);
    this.dm.add(client);
    this.#send(client, { type: 'welcome', name: who.name, transport: client.conn.transport, auth: who.method, limits: publicLimits(this.o) });
  }

  #closed(client: Client): void {
    if (client.closed) return;
    client.closed = true;
    this.#clients.delete(client);
    this.dm.remove(client);
    for (const member of [...client.rooms.values()]) this.#rooms.remove(member);
  }

  // ---- output ----

  #send(client: Client, m: ServerMessage): void {
    if (client.closed) return;
    client.conn.send(m);
  }

  #error(client: Client, code: ChatCode, message: string, extra: ErrorExtra = {}): void {
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
    this.tracer.emit('chat', client.conn.cid, '<', 'error', () => `${code}: ${message}`);
    this.#send(client, { type: 'error', code, message, ...extra });
  }

  #bad(client: Client): void {
    if (++client.bad > this.o.maxBadFrames && !client.closed) {
      this.stats.closedBadFrames++;
      client.conn.close(1008, `more than ${this.o.maxBadFrames} bad frames (maxBadFrames)`);
      this.#closed(client);
    }
  }
}
