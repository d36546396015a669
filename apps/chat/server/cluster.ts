/**
 * Multi-node chat (issue 15 item 4): several chat server processes on one NATS / JetStream cluster. The stored part
 * (messages, edits, deletes, mutes, kicks, the room's owner) already crosses nodes: it is the room's stream, and an
 * offset is the stream's sequence, so `since` means the same on every node. What was memory per process (who is
 * online, typing, receipts) travels here, on one core-NATS subject `_WL.chat.<namespace>.bus` (never stored: at most
 * once, like typing must be):
 *
 * - every message carries its node's id and a sequence number; one publisher on one subject reaches each subscriber in
 *   order, so a receiver that sees a gap (a reconnect lost some) asks that node for a snapshot (`sync`), which replaces
 *   what it knew of the node (who is online where, the receipts it holds);
 * - `on` / `off` when a user's first connection in a room opens / last one closes on a node, `typing`, `receipt`;
 * - `dm` to one node: a direct message's signaling or relayed text between users on two nodes (server/dm.ts), not an
 *   event (no sequence number: nothing of it is in a snapshot);
 * - `beat` every presenceLeaseMs / 3 with the last sequence number; every message carries its node's presenceLeaseMs,
 *   and a node not heard from for its lease (its process was killed, or it lost NATS) is dropped and its users leave
 *   the others' presence (nodes with different leases do not drop each other between beats); no clocks are compared
 *   between hosts (each receiver times the silence on its own monotonic clock); a node that closes says `bye`.
 *
 * server/nodes.ts turns these into the chat protocol's presence, typing and receipt messages for local members.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection, type Subscription } from 'nats';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { checkInt, InvalidOptionError } from '../../../core/options.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { ReceiptState } from '../protocol.ts';

export interface ChatClusterOptions {
  /** NATS URLs (the JetStream engine's cluster; one node or all). Required. */
  servers: string | string[];
  /** Chat servers with the same namespace share presence, typing and receipts. Default 'chat'. */
  namespace?: string;
  /** Other nodes this one keeps track of at most (a node past it is ignored, traced). Default 64. */
  maxNodes?: number;
}

export type Receipts = Map<string, { delivered: number; seen: number }>;

/** One room of a node's snapshot: who is online in it on that node, and the receipts it knows ([user, delivered, seen]). */
export interface SnapshotRoom {
  room: string;
  users: string[];
  receipts: [string, number, number][];
}

/** What the cluster tells the chat server (server/nodes.ts). */
export interface ClusterHooks {
  /** Whether `user` is online in `room` on some other node changed from `before` to `after`. */
  presence(room: string, user: string, before: boolean, after: boolean): void;
  typing(room: string, user: string, on: boolean): void;
  receipt(room: string, user: string, offset: number, state: ReceiptState): void;
  /** This node's live rooms, for a snapshot another node asked for. */
  snapshot(): SnapshotRoom[];
  /** A DM message (signal, dm, dm-ack: as its sender wrote it) from `from` on `node`, addressed to a user here. */
  dm(node: string, from: string, m: unknown): void;
}

export interface ChatCluster {
  /** This node's id on the bus. */
  readonly node: string;
  /** Other nodes heard from within the lease. */
  readonly nodes: number;
  start(hooks: ClusterHooks): Promise<void>;
  /** Users online in `room` on other nodes. */
  remoteOnline(room: string): Iterable<string>;
  isRemoteOnline(room: string, user: string): boolean;
  /** Receipts in `room` heard from other nodes (a room going live here starts from them). */
  remoteReceipts(room: string): Receipts | undefined;
  /** This node's first connection of `user` in `room` opened (true) or its last one closed (false). */
  local(room: string, user: string, online: boolean): void;
  typing(room: string, user: string, on: boolean): void;
  receipt(room: string, user: string, offset: number, state: ReceiptState): void;
  /** The other nodes on which `user` is online in one of `rooms`. */
  nodesWith(rooms: Iterable<string>, user: string): string[];
  /** Sends a DM message from `from` (a user here) to `node` (server/dm.ts routes it there). */
  dm(node: string, from: string, m: object): void;
  close(): Promise<void>;
}

type BusMessage = { n: string; s: number; l: number } & (
  | { op: 'on' | 'off'; r: string; u: string }
  | { op: 'typing'; r: string; u: string; on: boolean }
  | { op: 'receipt'; r: string; u: string; o: number; st: ReceiptState }
  | { op: 'beat' | 'bye' }
  | { op: 'sync'; to?: string }
  | { op: 'snap'; p: number; last: boolean; rooms: SnapshotRoom[] }
  | { op: 'dm'; to: string; u: string; m: unknown }
);

interface Peer {
  seenAt: number;
  /** Its presenceLeaseMs. */
  leaseMs: number;
  seq: number;
  /** A snapshot has been applied and every event since arrived in order. */
  synced: boolean;
  askedAt: number;
  rooms: Map<string, Set<string>>;
  parts: SnapshotRoom[];
}

/** How often leases are checked at least (a node's own beats go every presenceLeaseMs / 3). */
const CHECK_MS = 250;

/** Rooms one snapshot may hold (maxRooms' own upper bound): a longer one is dropped, traced. */
const MAX_SNAPSHOT_ROOMS = 1_000_000;

/** A snapshot is sent in parts of about this many bytes (NATS's max_payload is 1 MiB by default). */
const SNAPSHOT_PART_BYTES = 64 * 1024;

/** Connects to NATS (WL_ERR_PUBSUB_UNAVAILABLE naming the URL when it cannot); `start` joins the bus. */
export async function connectChatCluster(options: ChatClusterOptions, leaseMs: number, tracer: Tracer): Promise<ChatCluster> {
  const servers = typeof options.servers === 'string' ? options.servers.split(',') : options.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== 'string' || s === '')) {
    throw new InvalidOptionError('cluster.servers', 'a NATS URL or a list of them', options.servers);
  }
  const namespace = options.namespace ?? 'chat';
  if (typeof namespace !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(namespace)) throw new InvalidOptionError('cluster.namespace', '1-64 of A-Z a-z 0-9 _ -', namespace);
  const maxNodes = checkInt('cluster.maxNodes', options.maxNodes ?? 64, 1, 10_000);
  let nc: NatsConnection;
  try {
    nc = await connect({ servers, name: 'wirelab-chat', timeout: 5000, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: false });
  } catch (err) {
    throw new PubsubError(ErrorCodes.PUBSUB_UNAVAILABLE, `chat cluster: cannot reach NATS at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
  return new NatsChatCluster(nc, `_WL.chat.${namespace}.bus`, leaseMs, maxNodes, tracer);
}

class NatsChatCluster implements ChatCluster {
  readonly node = `${randomBytes(4).toString('hex')}-${process.pid}`;
  readonly #peers = new Map<string, Peer>();
  /** Room -> user -> on how many other nodes the user is online there. */
  readonly #where = new Map<string, Map<string, number>>();
  readonly #receipts = new Map<string, Receipts>();
  #seq = 0;
  #hooks: ClusterHooks | undefined;
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beatAt = -Infinity;
  #closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly leaseMs: number,
    private readonly maxNodes: number,
    private readonly tracer: Tracer,
  ) {
    void (async () => {
      for await (const s of nc.status()) this.#trace(`nats-${s.type}`, `nats ${s.type} ${typeof s.data === 'string' ? s.data : ''}`);
    })().catch(() => undefined);
  }

  get nodes(): number {
    return this.#peers.size;
  }

  async start(hooks: ClusterHooks): Promise<void> {
    this.#hooks = hooks;
    this.#sub = this.nc.subscribe(this.subject, {
      callback: (err, m) => {
        if (err) return this.#trace('error', `bus: ${err.message}`);
        let msg: BusMessage;
        try {
          msg = JSON.parse(Buffer.from(m.data).toString('utf8')) as BusMessage;
        } catch {
          return this.#trace('bad-message', `bus: ${m.data.length} bytes that are not JSON, skipped`);
        }
        if (typeof msg !== 'object' || msg === null || typeof msg.n !== 'string' || typeof msg.s !== 'number') return this.#trace('bad-message', 'bus: not a chat node message, skipped');
        if (msg.n !== this.node) this.#receive(msg);
      },
    });
    // Everyone already on the bus answers with a snapshot (and asks for ours, which is empty yet).
    this.#publish({ op: 'sync' }, false);
    await this.nc.flush().catch(() => undefined);
    this.#beatAt = performance.now();
    this.#timer = setInterval(() => this.#tick(), Math.max(50, Math.min(CHECK_MS, Math.floor(this.leaseMs / 3))));
    this.#timer.unref();
  }

  remoteOnline(room: string): Iterable<string> {
    return this.#where.get(room)?.keys() ?? [];
  }

  isRemoteOnline(room: string, user: string): boolean {
    return this.#where.get(room)?.has(user) ?? false;
  }

  remoteReceipts(room: string): Receipts | undefined {
    return this.#receipts.get(room);
  }

  local(room: string, user: string, online: boolean): void {
    this.#publish({ op: online ? 'on' : 'off', r: room, u: user });
  }

  typing(room: string, user: string, on: boolean): void {
    this.#publish({ op: 'typing', r: room, u: user, on });
  }

  receipt(room: string, user: string, offset: number, state: ReceiptState): void {
    this.#publish({ op: 'receipt', r: room, u: user, o: offset, st: state });
  }

  nodesWith(rooms: Iterable<string>, user: string): string[] {
    const out: string[] = [];
    const wanted = [...rooms];
    for (const [node, peer] of this.#peers) if (wanted.some((r) => peer.rooms.get(r)?.has(user))) out.push(node);
    return out;
  }

  dm(node: string, from: string, m: object): void {
    // Not an event: a DM is not part of what a snapshot restores (lost with a reconnect, as a relayed DM would be).
    this.#publish({ op: 'dm', to: node, u: from, m }, false);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#publish({ op: 'bye' }, false);
    this.#sub?.unsubscribe();
    await this.nc.drain().catch(() => this.nc.close());
  }

  // ---- sending ----

  /** Events take the next sequence number; beats, snapshots and requests carry the last one. */
  #publish(body: Record<string, unknown> & { op: BusMessage['op'] }, event = true): void {
    if (this.#closed && body.op !== 'bye') return;
    if (event) this.#seq++;
    try {
      this.nc.publish(this.subject, Buffer.from(JSON.stringify({ n: this.node, s: this.#seq, l: this.leaseMs, ...body })));
    } catch (err) {
      // Closed or draining: the others expire this node after presenceLeaseMs.
      this.#trace('error', `bus publish ${body.op}: ${(err as Error).message}`);
    }
  }

  #tick(): void {
    const now = performance.now();
    if (now - this.#beatAt >= this.leaseMs / 3) {
      this.#beatAt = now;
      this.#publish({ op: 'beat' }, false);
    }
    for (const [node, peer] of this.#peers) {
      if (now - peer.seenAt >= peer.leaseMs) this.#drop(node, peer, `not heard from for ${Math.round(now - peer.seenAt)} ms (its presenceLeaseMs ${peer.leaseMs})`);
    }
  }

  #snapshot(): void {
    const rooms = this.#hooks?.snapshot() ?? [];
    let part: SnapshotRoom[] = [];
    let bytes = 0;
    let p = 0;
    for (const r of rooms) {
      const size = JSON.stringify(r).length;
      if (part.length > 0 && bytes + size > SNAPSHOT_PART_BYTES) {
        this.#publish({ op: 'snap', p: p++, last: false, rooms: part }, false);
        part = [];
        bytes = 0;
      }
      part.push(r);
      bytes += size;
    }
    this.#publish({ op: 'snap', p, last: true, rooms: part }, false);
  }

  // ---- receiving ----

  #receive(m: BusMessage): void {
    let peer = this.#peers.get(m.n);
    if (!peer) {
      if (m.op === 'bye') return;
      if (this.#peers.size >= this.maxNodes) return this.#trace('limit', `node ${m.n} ignored: ${this.maxNodes} nodes known (cluster.maxNodes)`);
      peer = { seenAt: performance.now(), leaseMs: this.leaseMs, seq: -1, synced: false, askedAt: -Infinity, rooms: new Map(), parts: [] };
      this.#peers.set(m.n, peer);
      this.#trace('node-join', `node ${m.n} on the bus (${this.#peers.size} other nodes)`);
    }
    peer.seenAt = performance.now();
    if (typeof m.l === 'number' && m.l >= 150 && m.l <= 3_600_000) peer.leaseMs = m.l;
    switch (m.op) {
      case 'bye':
        return this.#drop(m.n, peer, 'said bye');
      case 'sync':
        if (m.to === undefined || m.to === this.node) this.#snapshot();
        if (!peer.synced) this.#ask(m.n, peer);
        return;
      case 'snap':
        if (!Array.isArray(m.rooms)) return;
        // A first part starts a snapshot afresh (the rest of one cut short by a reconnect is dropped).
        if (m.p === 0) peer.parts = [];
        if (peer.parts.length + m.rooms.length > MAX_SNAPSHOT_ROOMS) {
          peer.parts = [];
          return this.#trace('limit', `node ${m.n}: a snapshot of more than ${MAX_SNAPSHOT_ROOMS} rooms dropped`);
        }
        for (const r of m.rooms) peer.parts.push(r);
        if (!m.last) return;
        this.#replace(peer, peer.parts);
        peer.parts = [];
        peer.seq = m.s;
        peer.synced = true;
        return;
      case 'beat':
        if (!peer.synced || m.s !== peer.seq) this.#ask(m.n, peer);
        return;
      case 'dm':
        if (m.to === this.node && typeof m.u === 'string') this.#hooks?.dm(m.n, m.u, m.m);
        return;
    }
    if (!peer.synced) return this.#ask(m.n, peer);
    if (m.s !== peer.seq + 1) {
      // Something from this node was lost (a reconnect): what it holds comes again as a snapshot.
      this.#trace('gap', `node ${m.n}: sequence ${m.s} after ${peer.seq}: asking for a snapshot`);
      peer.synced = false;
      return this.#ask(m.n, peer);
    }
    peer.seq = m.s;
    if (typeof m.r !== 'string' || typeof m.u !== 'string') return;
    switch (m.op) {
      case 'on':
      case 'off':
        return this.#set(peer, m.r, m.u, m.op === 'on');
      case 'typing':
        return this.#hooks?.typing(m.r, m.u, m.on === true);
      case 'receipt':
        if (typeof m.o === 'number' && (m.st === 'delivered' || m.st === 'seen')) this.#receipt(m.r, m.u, m.o, m.st);
        return;
    }
  }

  /** Asks `node` for a snapshot, at most once per beat interval. */
  #ask(node: string, peer: Peer): void {
    const now = performance.now();
    if (now - peer.askedAt < this.leaseMs / 3) return;
    peer.askedAt = now;
    this.#publish({ op: 'sync', to: node }, false);
  }

  #receipt(room: string, user: string, offset: number, state: ReceiptState): void {
    // Kept only for rooms someone elsewhere is in (bounded by the other nodes' rooms); the core keeps its own anyway.
    if (!this.#where.has(room)) return this.#hooks?.receipt(room, user, offset, state);
    let rs = this.#receipts.get(room);
    if (!rs) this.#receipts.set(room, (rs = new Map()));
    let r = rs.get(user);
    if (!r) rs.set(user, (r = { delivered: -1, seen: -1 }));
    if (offset <= r[state]) return;
    r[state] = offset;
    if (state === 'seen' && offset > r.delivered) r.delivered = offset;
    this.#hooks?.receipt(room, user, offset, state);
  }

  /** The peer's presence becomes `rooms` (a snapshot): only what changed is told. */
  #replace(peer: Peer, rooms: SnapshotRoom[]): void {
    const next = new Map<string, Set<string>>();
    for (const r of rooms) {
      if (typeof r?.room !== 'string' || !Array.isArray(r.users)) continue;
      next.set(r.room, new Set(r.users.filter((u) => typeof u === 'string')));
    }
    for (const [room, users] of [...peer.rooms]) for (const u of [...users]) if (!next.get(room)?.has(u)) this.#set(peer, room, u, false);
    for (const [room, users] of next) for (const u of users) this.#set(peer, room, u, true);
    for (const r of rooms) {
      if (typeof r?.room !== 'string' || !Array.isArray(r.receipts)) continue;
      for (const x of r.receipts) {
        if (!Array.isArray(x) || typeof x[0] !== 'string') continue;
        if (typeof x[1] === 'number' && x[1] >= 0) this.#receipt(r.room, x[0], x[1], 'delivered');
        if (typeof x[2] === 'number' && x[2] >= 0) this.#receipt(r.room, x[0], x[2], 'seen');
      }
    }
  }

  #set(peer: Peer, room: string, user: string, on: boolean): void {
    let users = peer.rooms.get(room);
    if (on === (users?.has(user) ?? false)) return;
    const before = this.isRemoteOnline(room, user);
    let where = this.#where.get(room);
    if (on) {
      if (!users) peer.rooms.set(room, (users = new Set()));
      users.add(user);
      if (!where) this.#where.set(room, (where = new Map()));
      where.set(user, (where.get(user) ?? 0) + 1);
    } else {
      users!.delete(user);
      if (users!.size === 0) peer.rooms.delete(room);
      const n = (where?.get(user) ?? 1) - 1;
      if (n > 0) where!.set(user, n);
      else where?.delete(user);
      if (where?.size === 0) {
        // Nobody elsewhere is in the room: the receipts heard for it go (as a room's do when its last member leaves).
        this.#where.delete(room);
        this.#receipts.delete(room);
      }
    }
    const after = this.isRemoteOnline(room, user);
    if (before !== after) this.#hooks?.presence(room, user, before, after);
  }

  #drop(node: string, peer: Peer, why: string): void {
    this.#peers.delete(node);
    for (const [room, users] of [...peer.rooms]) for (const u of [...users]) this.#set(peer, room, u, false);
    this.#trace('node-gone', `node ${node} ${why}: its users left (${this.#peers.size} other nodes)`);
  }

  #trace(kind: string, summary: string): void {
    this.tracer.emit('chat', 'chat-cluster', '*', kind, () => summary);
  }
}
