/**
 * The chat server's rooms: each a broker topic (`chat.room.<name>`, one partition, history in the durable log), made
 * live on its first join and dropped with its last member. A member holds the next offset it still needs, so a join
 * from `since` (a reconnect) is replayed from the log with no gap and no duplicate, and live events that arrive while it
 * catches up wait in `pending`. One subscription for every room feeds the live events (`#onLive`). Writes (send, edit,
 * delete) go through the per-user rate limit and the mute check (moderation.ts); presence, typing and receipts are
 * nodes.ts's (never stored).
 */
import type { Tracer } from '../../../core/trace/index.ts';
import type { Broker, Message, Session, Subscription } from '../../../pubsub/broker/types.ts';
import type { LogRecord } from '../../../pubsub/log/types.ts';
import { ChatCodes, roomProblem, ROOM_PATTERN, roomTopic, type ChatEvent, type ClientMessage, type ServerMessage, type StoredEvent } from '../protocol.ts';
import type { ChatCluster } from './cluster.ts';
import type { Moderation } from './moderation.ts';
import { RoomPresence } from './nodes.ts';
import type { ResolvedChatOptions } from './options.ts';
import { decode, UserBuckets, type ChatOut, type ChatStats, type Client, type Member, type Room } from './state.ts';

const READ_PAGE = 256;

export interface RoomsDeps {
  broker: Broker;
  session: Session;
  o: ResolvedChatOptions;
  tracer: Tracer;
  out: ChatOut;
  stats: ChatStats;
  moderation: Moderation;
  cluster: ChatCluster | undefined;
  /** A DM message from a user on another node (server/dm.ts). */
  remoteDm(node: string, from: string, m: unknown): void;
}

export class ChatRooms {
  readonly #rooms = new Map<string, Room>();
  readonly #buckets: UserBuckets;
  #subscription: Subscription | undefined;
  /** Who is online, typing, receipts: here, and across nodes (server/nodes.ts). */
  readonly presence: RoomPresence;

  constructor(private readonly d: RoomsDeps) {
    this.#buckets = new UserBuckets(d.o.ratePerSecond, d.o.rateBurst);
    this.presence = new RoomPresence({ rooms: this.#rooms, toRoom: (room, m, except) => this.toRoom(room, m, except), remoteDm: d.remoteDm }, d.cluster);
  }

  /** One subscription for every room: live events fan out from here to the members. */
  async start(): Promise<void> {
    await this.presence.start();
    this.#subscription = await this.d.session.subscribe({ pattern: ROOM_PATTERN, ack: 'none', start: { kind: 'new' }, buffer: { size: 100_000, policy: 'block' } }, (m) => {
      this.#onLive(m);
      return true;
    });
  }

  async close(): Promise<void> {
    await this.#subscription?.close();
    await this.presence.close();
  }

  /** The members of a live room (none when it is not live here). */
  members(room: string): Iterable<Member> {
    return this.#rooms.get(room)?.members ?? [];
  }

  async join(client: Client, name: string, roomName: string, since: number | undefined): Promise<void> {
    const { o, out } = this.d;
    const problem = roomProblem(roomName);
    if (problem) {
      out.error(client, ChatCodes.ROOM, problem);
      return out.bad(client);
    }
    if (client.rooms.has(roomName)) return out.error(client, ChatCodes.STATE, `already in room ${roomName}`, { room: roomName });
    if (client.rooms.size >= o.maxRoomsPerConnection) {
      out.error(client, ChatCodes.LIMIT, `at most ${o.maxRoomsPerConnection} rooms per connection`, { limit: 'maxRoomsPerConnection', room: roomName });
      return out.bad(client);
    }
    const banned = this.d.moderation.bannedFor(roomName, name);
    if (banned > 0) return out.error(client, ChatCodes.KICKED, `kicked from ${roomName}: rejoin in ${Math.ceil(banned / 1000)} s`, { room: roomName, retryAfterMs: banned });
    const room = this.#room(roomName, name);
    if (!room) return out.error(client, ChatCodes.LIMIT, `the server has ${o.maxRooms} rooms live (maxRooms)`, { limit: 'maxRooms', room: roomName });
    // The member exists before the room is ready, so the room is not evicted meanwhile; it gets live events in pending.
    const member: Member = { client, room, next: 0, catching: true, pending: [], typingAt: -Infinity };
    client.rooms.set(roomName, member);
    room.members.add(member);
    try {
      await room.ready;
    } catch (err) {
      this.remove(member);
      throw err;
    }
    if (client.closed || client.rooms.get(roomName) !== member) return;
    const info = (await this.d.broker.engine.topic(room.topic))?.partitionInfo[0];
    if (client.closed || client.rooms.get(roomName) !== member) return;
    const first = info?.firstOffset ?? 0;
    const end = info?.nextOffset ?? 0;
    const fresh = Math.max(first, end - o.historyOnJoin);
    let from = fresh;
    let recovered = false;
    if (since !== undefined) {
      // since at or past the end: the client saw offsets this log never had (a server restarted on an in-memory log).
      const want = since + 1;
      recovered = want >= first && want <= end && end - want <= o.maxRecoverEvents;
      if (recovered) from = want;
    }
    member.next = from;
    const count = room.online.get(name) ?? 0;
    room.online.set(name, count + 1);
    out.send(client, { type: 'joined', room: roomName, owner: room.owner, online: this.presence.online(room), recovered, from, end });
    if (count === 0) this.presence.arrived(room, name, client);
    await this.#catchUp(member);
    if (client.rooms.get(roomName) !== member) return;
    out.send(client, { type: 'synced', room: roomName, next: member.next });
    for (const [user, r] of room.receipts) {
      if (r.delivered >= 0) out.send(client, { type: 'receipt', room: roomName, user, offset: r.delivered, state: 'delivered' });
      if (r.seen >= 0) out.send(client, { type: 'receipt', room: roomName, user, offset: r.seen, state: 'seen' });
    }
  }

  /** The room, made live on first use (its owner read from offset 0, or written there by the first joiner). */
  #room(name: string, joiner: string): Room | undefined {
    const live = this.#rooms.get(name);
    if (live) return live;
    if (this.#rooms.size >= this.d.o.maxRooms) return undefined;
    const room: Room = { name, topic: roomTopic(name), owner: undefined, members: new Set(), online: new Map(), receipts: new Map(), ready: Promise.resolve() };
    this.presence.seed(room);
    room.ready = (async () => {
      let [firstRecord] = await this.#read(room.topic, 0, 1);
      if (!firstRecord) {
        await this.d.session.publish({ topic: room.topic, payload: Buffer.from(JSON.stringify({ kind: 'created', user: joiner } satisfies StoredEvent)), msgId: `created:${name}` });
        [firstRecord] = await this.#read(room.topic, 0, 1);
      }
      const ev = firstRecord && decode(name, firstRecord.offset, firstRecord.timestamp, firstRecord.payload);
      if (ev?.kind === 'created') room.owner = ev.user;
    })();
    room.ready.catch(() => {
      if (this.#rooms.get(name) === room) this.#rooms.delete(name);
    });
    this.#rooms.set(name, room);
    this.d.stats.rooms = this.#rooms.size;
    return room;
  }

  async #read(topic: string, offset: number, max: number): Promise<LogRecord[]> {
    if (!(await this.d.broker.engine.topic(topic))) return [];
    return this.d.broker.engine.read(topic, 0, offset, max);
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
    if (!room && !this.presence.cluster) return;
    const ev = decode(name, m.offset, m.timestamp, m.payload);
    // Multi-node: a mute or kick stored by another node's owner holds here too, live room or not.
    if (this.presence.cluster) this.d.moderation.moderated(ev);
    if (!room) return;
    if (!ev) {
      this.d.tracer.emit('chat', 'chat-server', '*', 'bad-record', () => `${m.topic}@${m.offset}: not a chat event, skipped`);
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
    this.d.stats.eventsOut++;
    this.d.out.send(member.client, ev);
  }

  leave(member: Member, reason: string): void {
    this.remove(member);
    this.d.out.send(member.client, { type: 'left', room: member.room.name, reason });
  }

  /** The member goes (a leave, a kick, its connection closed); the room goes with its last member. */
  remove(member: Member): void {
    const { room, client } = member;
    if (client.rooms.get(room.name) !== member) return;
    client.rooms.delete(room.name);
    room.members.delete(member);
    const name = client.name!;
    const count = room.online.get(name) ?? 0;
    if (count <= 1) {
      room.online.delete(name);
      if (count === 1) this.presence.departed(room, name);
    } else room.online.set(name, count - 1);
    if (room.members.size === 0) {
      this.#rooms.delete(room.name);
      this.d.stats.rooms = this.#rooms.size;
    }
  }

  // ---- writes: send, edit, delete ----

  async write(client: Client, name: string, room: Room, m: Extract<ClientMessage, { type: 'send' | 'edit' | 'delete' }>): Promise<void> {
    const { o, out, stats } = this.d;
    const cidField = m.type === 'send' ? { cid: m.cid } : {};
    const muted = this.d.moderation.mutedFor(room.name, name);
    if (muted > 0) return out.error(client, ChatCodes.MUTED, `muted in ${room.name} for ${Math.ceil(muted / 1000)} s more`, { room: room.name, retryAfterMs: muted, ...cidField });
    if (m.type !== 'delete') {
      const chars = [...m.text].length;
      if (chars === 0 || m.text.trim() === '') return out.error(client, ChatCodes.INVALID, 'an empty message', { room: room.name, ...cidField });
      if (chars > o.maxMessageChars) {
        out.error(client, ChatCodes.LIMIT, `a message has at most ${o.maxMessageChars} characters`, { limit: 'maxMessageChars', room: room.name, ...cidField });
        return out.bad(client);
      }
    }
    if (!this.#buckets.take(name)) {
      return out.error(client, ChatCodes.RATE, `slow down: at most ${o.ratePerSecond} messages a second (burst ${o.rateBurst})`, {
        limit: 'ratePerSecond',
        retryAfterMs: Math.ceil(1000 / o.ratePerSecond),
        room: room.name,
        ...cidField,
      });
    }
    let stored: StoredEvent;
    if (m.type === 'send') stored = { kind: 'msg', user: name, text: m.text, cid: m.cid };
    else {
      const [target] = await this.#read(room.topic, m.ref, 1);
      const ev = target && target.offset === m.ref ? decode(room.name, target.offset, target.timestamp, target.payload) : undefined;
      if (!ev || ev.kind !== 'msg') return out.error(client, ChatCodes.NOT_FOUND, `no message at ${room.name}@${m.ref}`, { room: room.name });
      const mayDelete = m.type === 'delete' && room.owner === name;
      if (ev.user !== name && !mayDelete) return out.error(client, ChatCodes.FORBIDDEN, `only ${ev.user} may ${m.type} that message`, { room: room.name });
      stored = m.type === 'edit' ? { kind: 'edit', user: name, ref: m.ref, text: m.text } : { kind: 'delete', user: name, ref: m.ref };
    }
    const payload = Buffer.from(JSON.stringify(stored));
    const result = await this.d.session.publish({ topic: room.topic, payload, ...(m.type === 'send' ? { msgId: `chat:${name.length}:${name}:${m.cid}` } : {}) });
    if (m.type === 'send') {
      stats.messages++;
      stats.messageBytes += Buffer.byteLength(m.text);
      out.send(client, { type: 'sent', room: room.name, cid: m.cid, offset: result.offset, t: result.timestamp, duplicate: result.duplicate });
    }
  }

  async history(client: Client, room: Room, before: number, limit: number): Promise<void> {
    const { o, out } = this.d;
    if (limit > o.maxHistoryPage) {
      out.error(client, ChatCodes.LIMIT, `a history page holds at most ${o.maxHistoryPage} events`, { limit: 'maxHistoryPage', room: room.name });
      return out.bad(client);
    }
    const info = (await this.d.broker.engine.topic(room.topic))?.partitionInfo[0];
    const first = info?.firstOffset ?? 0;
    const end = Math.min(before, info?.nextOffset ?? 0);
    const from = Math.max(first, end - limit);
    const records = end > from ? await this.#read(room.topic, from, end - from) : [];
    const events = records.filter((r) => r.offset < end).flatMap((r) => decode(room.name, r.offset, r.timestamp, r.payload) ?? []);
    out.send(client, { type: 'history', room: room.name, events, before: end, first });
  }

  // ---- output ----

  /** Sends to every member of the room that is not catching up (but `except`). */
  toRoom(room: Room, m: ServerMessage, except?: Client): void {
    for (const member of room.members) if (member.client !== except && !member.catching) this.d.out.send(member.client, m);
  }
}
