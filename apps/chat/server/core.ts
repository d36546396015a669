/**
 * The chat server's state, independent of the transport: rooms on broker topics (`chat.room.<name>`, one partition,
 * history in the durable log), members with the next offset each still needs (so a reconnect from `since` is replayed
 * from the log with no gap and no duplicate), presence, typing and receipts (never stored: server/nodes.ts, across
 * nodes through server/cluster.ts), moderation, limits. A transport (server/index.ts: WebSocket) gives it a `ChatConn` per client and feeds it text frames.
 */
import { PubsubError } from '../../../core/errors.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { Broker, Message, Session, Subscription } from '../../../pubsub/broker/types.ts';
import type { LogRecord } from '../../../pubsub/log/types.ts';
import { ChatCodes, nameProblem, parseClientMessage, ROOM_PATTERN, roomProblem, roomTopic, type ChatCode, type ChatEvent, type ClientMessage, type ServerMessage, type StoredEvent } from '../protocol.ts';
import { publicLimits, type ResolvedChatOptions } from './options.ts';
import type { ChatCluster } from './cluster.ts';
import { RoomPresence } from './nodes.ts';
import { decode, Expiring, UserBuckets, type ChatConn, type ChatStats, type Client, type Member, type Room } from './state.ts';
import { DmRouter, isDmMessage } from './dm.ts';
import { ChatAuth, type AuthResult } from './auth.ts';

export type { ChatConn, ChatStats, Transport } from './state.ts';

const READ_PAGE = 256;

export class ChatCore {
  readonly stats: ChatStats = { connections: 0, rooms: 0, messages: 0, messageBytes: 0, eventsOut: 0, typingRelayed: 0, errors: {}, closedBadFrames: 0 };
  readonly #rooms = new Map<string, Room>();
  readonly #clients = new Set<Client>();
  readonly #muted = new Expiring();
  readonly #banned = new Expiring();
  #subscription: Subscription | undefined;
  readonly #presence: RoomPresence;
  readonly #buckets: UserBuckets;
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
    this.#buckets = new UserBuckets(o.ratePerSecond, o.rateBurst);
    this.auth = new ChatAuth(o.users, o.allowGuests, o.allowInsecureAuth);
    this.#presence = new RoomPresence({ rooms: this.#rooms, toRoom: (room, m, except) => this.#toRoom(room, m, except), remoteDm: (node, from, m) => this.dm.remote(node, from, m) }, cluster);
    this.dm = new DmRouter(o, tracer, { send: (c, m) => this.#send(c, m), error: (c, code, text, extra) => this.#error(c, code, text, extra), bad: (c) => this.#bad(c) }, cluster);
  }

  /** One subscription for every room: live events fan out from here to the members. */
  async start(): Promise<void> {
    await this.#presence.start();
    this.#subscription = await this.session.subscribe({ pattern: ROOM_PATTERN, ack: 'none', start: { kind: 'new' }, buffer: { size: 100_000, policy: 'block' } }, (m) => {
      this.#onLive(m);
      return true;
    });
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.conn.close(1001, 'server closing');
    await this.#subscription?.close();
    await this.#presence.close();
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
    if (m.type === 'join') return this.#join(client, name, m.room, m.since);
    const member = client.rooms.get(m.room);
    if (!member) return this.#error(client, ChatCodes.STATE, `not in room ${m.room}: join it first`, { room: m.room });
    const room = member.room;
    switch (m.type) {
      case 'leave':
        return this.#leave(member, 'left');
      case 'send':
      case 'edit':
        return this.#write(client, name, room, m);
      case 'delete':
        return this.#write(client, name, room, m);
      case 'typing':
        if (m.on) {
          const now = performance.now();
          if (now - member.typingAt < this.o.typingIntervalMs) return;
          member.typingAt = now;
        } else member.typingAt = -Infinity;
        this.stats.typingRelayed++;
        return this.#presence.typing(room, name, m.on, client);
      case 'receipt':
        return this.#presence.receipt(room, name, m.offset, m.state, client);
      case 'history':
        return this.#history(client, room, m.before, m.limit ?? this.o.historyOnJoin);
      case 'who':
        return this.#send(client, { type: 'who', room: room.name, online: this.#presence.online(room), owner: room.owner });
      case 'mute':
      case 'kick':
        return this.#moderate(client, name, room, m);
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

  // ---- rooms ----

  async #join(client: Client, name: string, roomName: string, since: number | undefined): Promise<void> {
    const problem = roomProblem(roomName);
    if (problem) {
      this.#error(client, ChatCodes.ROOM, problem);
      return this.#bad(client);
    }
    if (client.rooms.has(roomName)) return this.#error(client, ChatCodes.STATE, `already in room ${roomName}`, { room: roomName });
    if (client.rooms.size >= this.o.maxRoomsPerConnection) {
      this.#error(client, ChatCodes.LIMIT, `at most ${this.o.maxRoomsPerConnection} rooms per connection`, { limit: 'maxRoomsPerConnection', room: roomName });
      return this.#bad(client);
    }
    const banned = this.#banned.left(roomName, name);
    if (banned > 0) return this.#error(client, ChatCodes.KICKED, `kicked from ${roomName}: rejoin in ${Math.ceil(banned / 1000)} s`, { room: roomName, retryAfterMs: banned });
    const room = this.#room(roomName, name);
    if (!room) return this.#error(client, ChatCodes.LIMIT, `the server has ${this.o.maxRooms} rooms live (maxRooms)`, { limit: 'maxRooms', room: roomName });
    // The member exists before the room is ready, so the room is not evicted meanwhile; it gets live events in pending.
    const member: Member = { client, room, next: 0, catching: true, pending: [], typingAt: -Infinity };
    client.rooms.set(roomName, member);
    room.members.add(member);
    try {
      await room.ready;
    } catch (err) {
      this.#remove(member);
      throw err;
    }
    if (client.closed || client.rooms.get(roomName) !== member) return;
    const info = (await this.broker.engine.topic(room.topic))?.partitionInfo[0];
    if (client.closed || client.rooms.get(roomName) !== member) return;
    const first = info?.firstOffset ?? 0;
    const end = info?.nextOffset ?? 0;
    const fresh = Math.max(first, end - this.o.historyOnJoin);
    let from = fresh;
    let recovered = false;
    if (since !== undefined) {
      // since at or past the end: the client saw offsets this log never had (a server restarted on an in-memory log).
      const want = since + 1;
      recovered = want >= first && want <= end && end - want <= this.o.maxRecoverEvents;
      if (recovered) from = want;
    }
    member.next = from;
    const count = room.online.get(name) ?? 0;
    room.online.set(name, count + 1);
    this.#send(client, { type: 'joined', room: roomName, owner: room.owner, online: this.#presence.online(room), recovered, from, end });
    if (count === 0) this.#presence.arrived(room, name, client);
    await this.#catchUp(member);
    if (client.rooms.get(roomName) !== member) return;
    this.#send(client, { type: 'synced', room: roomName, next: member.next });
    for (const [user, r] of room.receipts) {
      if (r.delivered >= 0) this.#send(client, { type: 'receipt', room: roomName, user, offset: r.delivered, state: 'delivered' });
      if (r.seen >= 0) this.#send(client, { type: 'receipt', room: roomName, user, offset: r.seen, state: 'seen' });
    }
  }

  /** The room, made live on first use (its owner read from offset 0, or written there by the first joiner). */
  #room(name: string, joiner: string): Room | undefined {
    const live = this.#rooms.get(name);
    if (live) return live;
    if (this.#rooms.size >= this.o.maxRooms) return undefined;
    const room: Room = { name, topic: roomTopic(name), owner: undefined, members: new Set(), online: new Map(), receipts: new Map(), ready: Promise.resolve() };
    this.#presence.seed(room);
    room.ready = (async () => {
      let [firstRecord] = await this.#read(room.topic, 0, 1);
      if (!firstRecord) {
        await this.session.publish({ topic: room.topic, payload: Buffer.from(JSON.stringify({ kind: 'created', user: joiner } satisfies StoredEvent)), msgId: `created:${name}` });
        [firstRecord] = await this.#read(room.topic, 0, 1);
      }
      const ev = firstRecord && decode(name, firstRecord.offset, firstRecord.timestamp, firstRecord.payload);
      if (ev?.kind === 'created') room.owner = ev.user;
    })();
    room.ready.catch(() => {
      if (this.#rooms.get(name) === room) this.#rooms.delete(name);
    });
    this.#rooms.set(name, room);
    this.stats.rooms = this.#rooms.size;
    return room;
  }

  async #read(topic: string, offset: number, max: number): Promise<LogRecord[]> {
    if (!(await this.broker.engine.topic(topic))) return [];
    return this.broker.engine.read(topic, 0, offset, max);
  }

  /** Sends the member every stored event from `member.next` to the log's end, then what arrived live meanwhile. */
  async #catchUp(member: Member): Promise<void> {
    const { room, client } = member;
    member.catching = true;
    for (let rounds = 0; rounds < 10; rounds++) {
      for (;;) {
        const records = await this.#read(room.topic, member.next, READ_PAGE);
        if (client.rooms.get(room.name) !== member) return;
        for (const r of records) {
          const ev = decode(room.name, r.offset, r.timestamp, r.payload);
          if (r.offset >= member.next) {
            member.next = r.offset + 1;
            if (ev) this.#sendEvent(member, ev);
          }
        }
        if (records.length < READ_PAGE) break;
      }
      const pending = member.pending;
      member.pending = [];
      let gap = false;
      for (const ev of pending) {
        if (ev.offset < member.next) continue;
        if (ev.offset > member.next) {
          gap = true;
          break;
        }
        member.next = ev.offset + 1;
        this.#sendEvent(member, ev);
      }
      if (!gap) {
        member.catching = false;
        return;
      }
    }
    member.catching = false;
  }

  #onLive(m: Message): void {
    const name = m.topic.slice('chat.room.'.length);
    const room = this.#rooms.get(name);
    if (!room && !this.#presence.cluster) return;
    const ev = decode(name, m.offset, m.timestamp, m.payload);
    // Multi-node: a mute or kick stored by another node's owner holds here too, live room or not.
    if (this.#presence.cluster) this.#moderated(ev);
    if (!room) return;
    if (!ev) {
      this.tracer.emit('chat', 'chat-server', '*', 'bad-record', () => `${m.topic}@${m.offset}: not a chat event, skipped`);
      for (const member of room.members) if (!member.catching && member.next === m.offset) member.next++;
      return;
    }
    if (ev.kind === 'created' && room.owner === undefined) room.owner = ev.user;
    for (const member of room.members) {
      if (member.catching) member.pending.push(ev);
      else if (ev.offset === member.next) {
        member.next++;
        this.#sendEvent(member, ev);
      } else if (ev.offset > member.next) {
        // A gap (the live subscription picked the topic up late): replay it from the log.
        member.pending.push(ev);
        this.#catchUp(member).catch(() => member.client.conn.close(1011, 'recovery failed'));
      }
    }
  }

  #sendEvent(member: Member, ev: ChatEvent): void {
    this.stats.eventsOut++;
    this.#send(member.client, ev);
  }

  #leave(member: Member, reason: string): void {
    this.#remove(member);
    this.#send(member.client, { type: 'left', room: member.room.name, reason });
  }

  #remove(member: Member): void {
    const { room, client } = member;
    if (client.rooms.get(room.name) !== member) return;
    client.rooms.delete(room.name);
    room.members.delete(member);
    const name = client.name!;
    const count = room.online.get(name) ?? 0;
    if (count <= 1) {
      room.online.delete(name);
      if (count === 1) this.#presence.departed(room, name);
    } else room.online.set(name, count - 1);
    if (room.members.size === 0) {
      this.#rooms.delete(room.name);
      this.stats.rooms = this.#rooms.size;
    }
  }

  #closed(client: Client): void {
    if (client.closed) return;
    client.closed = true;
    this.#clients.delete(client);
    this.dm.remove(client);
    for (const member of [...client.rooms.values()]) this.#remove(member);
  }

  // ---- writes: send, edit, delete ----

  async #write(client: Client, name: string, room: Room, m: Extract<ClientMessage, { type: 'send' | 'edit' | 'delete' }>): Promise<void> {
    const cidField = m.type === 'send' ? { cid: m.cid } : {};
    const muted = this.#muted.left(room.name, name);
    if (muted > 0) return this.#error(client, ChatCodes.MUTED, `muted in ${room.name} for ${Math.ceil(muted / 1000)} s more`, { room: room.name, retryAfterMs: muted, ...cidField });
    if (m.type !== 'delete') {
      const chars = [...m.text].length;
      if (chars === 0 || m.text.trim() === '') return this.#error(client, ChatCodes.INVALID, 'an empty message', { room: room.name, ...cidField });
      if (chars > this.o.maxMessageChars) {
        this.#error(client, ChatCodes.LIMIT, `a message has at most ${this.o.maxMessageChars} characters`, { limit: 'maxMessageChars', room: room.name, ...cidField });
        return this.#bad(client);
      }
    }
    if (!this.#buckets.take(name)) {
      return this.#error(client, ChatCodes.RATE, `slow down: at most ${this.o.ratePerSecond} messages a second (burst ${this.o.rateBurst})`, {
        limit: 'ratePerSecond',
        retryAfterMs: Math.ceil(1000 / this.o.ratePerSecond),
        room: room.name,
        ...cidField,
      });
    }
    let stored: StoredEvent;
    if (m.type === 'send') stored = { kind: 'msg', user: name, text: m.text, cid: m.cid };
    else {
      const [target] = await this.#read(room.topic, m.ref, 1);
      const ev = target && target.offset === m.ref ? decode(room.name, target.offset, target.timestamp, target.payload) : undefined;
      if (!ev || ev.kind !== 'msg') return this.#error(client, ChatCodes.NOT_FOUND, `no message at ${room.name}@${m.ref}`, { room: room.name });
      const mayDelete = m.type === 'delete' && room.owner === name;
      if (ev.user !== name && !mayDelete) return this.#error(client, ChatCodes.FORBIDDEN, `only ${ev.user} may ${m.type} that message`, { room: room.name });
      stored = m.type === 'edit' ? { kind: 'edit', user: name, ref: m.ref, text: m.text } : { kind: 'delete', user: name, ref: m.ref };
    }
    const payload = Buffer.from(JSON.stringify(stored));
    const result = await this.session.publish({ topic: room.topic, payload, ...(m.type === 'send' ? { msgId: `chat:${name.length}:${name}:${m.cid}` } : {}) });
    if (m.type === 'send') {
      this.stats.messages++;
      this.stats.messageBytes += Buffer.byteLength(m.text);
      this.#send(client, { type: 'sent', room: room.name, cid: m.cid, offset: result.offset, t: result.timestamp, duplicate: result.duplicate });
    }
  }

  async #history(client: Client, room: Room, before: number, limit: number): Promise<void> {
    if (limit > this.o.maxHistoryPage) {
      this.#error(client, ChatCodes.LIMIT, `a history page holds at most ${this.o.maxHistoryPage} events`, { limit: 'maxHistoryPage', room: room.name });
      return this.#bad(client);
    }
    const info = (await this.broker.engine.topic(room.topic))?.partitionInfo[0];
    const first = info?.firstOffset ?? 0;
    const end = Math.min(before, info?.nextOffset ?? 0);
    const from = Math.max(first, end - limit);
    const records = end > from ? await this.#read(room.topic, from, end - from) : [];
    const events = records.filter((r) => r.offset < end).flatMap((r) => decode(room.name, r.offset, r.timestamp, r.payload) ?? []);
    this.#send(client, { type: 'history', room: room.name, events, before: end, first });
  }

  async #moderate(client: Client, name: string, room: Room, m: Extract<ClientMessage, { type: 'mute' | 'kick' }>): Promise<void> {
    if (room.owner !== name) return this.#error(client, ChatCodes.FORBIDDEN, `only the room's owner (${room.owner ?? 'nobody'}) may ${m.type}`, { room: room.name });
    if (m.user === name) return this.#error(client, ChatCodes.FORBIDDEN, `the owner may not ${m.type} themself`, { room: room.name });
    if (m.type === 'mute') {
      const until = m.ms === 0 ? 0 : Date.now() + Math.min(m.ms, 86_400_000);
      this.#muted.set(room.name, m.user, until);
      await this.session.publish({ topic: room.topic, payload: Buffer.from(JSON.stringify({ kind: 'mute', user: name, target: m.user, until } satisfies StoredEvent)) });
      return;
    }
    this.#banned.set(room.name, m.user, Date.now() + this.o.kickBanMs);
    await this.session.publish({ topic: room.topic, payload: Buffer.from(JSON.stringify({ kind: 'kick', user: name, target: m.user } satisfies StoredEvent)) });
    for (const member of [...room.members]) if (member.client.name === m.user) this.#leave(member, `kicked by ${name}`);
  }

  #moderated(ev: ChatEvent | undefined): void {
    if (ev?.target === undefined) return;
    if (ev.kind === 'mute') this.#muted.set(ev.room, ev.target, ev.until ?? 0);
    if (ev.kind !== 'kick') return;
    this.#banned.set(ev.room, ev.target, ev.t + this.o.kickBanMs);
    for (const member of [...(this.#rooms.get(ev.room)?.members ?? [])]) if (member.client.name === ev.target) this.#leave(member, `kicked by ${ev.user}`);
  }

  // ---- output ----

  #toRoom(room: Room, m: ServerMessage, except?: Client): void {
    for (const member of room.members) if (member.client !== except && !member.catching) this.#send(member.client, m);
  }

  #send(client: Client, m: ServerMessage): void {
    if (client.closed) return;
    client.conn.send(m);
  }

  #error(client: Client, code: ChatCode, message: string, extra: { limit?: string; retryAfterMs?: number; room?: string; cid?: string } = {}): void {
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
