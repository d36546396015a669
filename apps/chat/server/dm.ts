/**
 * Direct messages (issue 15): the chat server's part is small on purpose. It relays WebRTC signaling (`signal`: offer,
 * answer, ICE candidates, bye) between two users who are online in a room they share, so their pages can open a data
 * channel and DM peer to peer: the DM text then never passes through here. When ICE fails, the pages fall back to `dm`
 * messages relayed to the other user's connections only (never stored, never published to a room), each answered by a
 * `dm-ack` the same way. Limits: maxSdpBytes, maxCandidateBytes, maxDmSessionsPerUser (offers not yet answered),
 * dmSessionTtlMs (how long a session's signaling is relayed), maxMessageChars and the per-user rate for relayed text.
 *
 * Multi-node (server/cluster.ts): a user on another node is reached through the cluster bus. The sender's node checks
 * and rate-limits as for a local user, finds the nodes where the other user is online in a room the sender is in, and
 * sends the message there (`dm` on the bus, to one node); that node checks it again (shape, sizes, and that the sender
 * is online in a room its user is in, as the bus told it) and hands it to its user's connections. A session whose
 * other end is on another node remembers that node and name, so the answer and the candidates go back the same way.
 */
import type { Tracer } from '../../../core/trace/index.ts';
import { TokenBucket } from '../../../pubsub/broker/rate.ts';
import { ChatCodes, parseClientMessage, type ChatCode, type DmClientMessage, type ServerMessage } from '../protocol.ts';
import type { ChatCluster } from './cluster.ts';
import type { ResolvedChatOptions } from './options.ts';
import type { Client } from './state.ts';

export interface DmStats {
  /** Signaling messages relayed (offer, answer, candidate, bye). */
  signals: number;
  /** Bytes of SDP and candidate lines relayed. */
  signalBytes: number;
  /** DMs relayed (the fallback) and their text bytes: a DM over the data channel moves neither. */
  relayed: number;
  relayedBytes: number;
  acks: number;
  /** DM sessions offered and not yet answered, now. */
  pendingSessions: number;
  /** DM messages (signals, relayed DMs, acks) sent to / received from other nodes over the cluster bus. */
  toNodes: number;
  fromNodes: number;
  /** Messages from other nodes dropped (bad shape or size, no such user or session here). */
  fromNodesDropped: number;
}

/** The end of a session on another node. */
interface Remote {
  node: string;
  name: string;
}
type End = Client | Remote;
const isRemote = (e: End): e is Remote => 'node' in e;

interface Session {
  id: string;
  offerer: End;
  answerer: End;
  answered: boolean;
  /** Date.now() of the offer: after dmSessionTtlMs the session is forgotten. */
  at: number;
}

type ErrorExtra = { limit?: string; cid?: string };

export interface DmOut {
  send(client: Client, m: ServerMessage): void;
  error(client: Client, code: ChatCode, message: string, extra?: ErrorExtra): void;
  /** Counts a bad frame (closes the connection past maxBadFrames). */
  bad(client: Client): void;
}

export const isDmMessage = (m: { type: string }): m is DmClientMessage => m.type === 'signal' || m.type === 'dm' || m.type === 'dm-ack';

export class DmRouter {
  readonly stats: DmStats = { signals: 0, signalBytes: 0, relayed: 0, relayedBytes: 0, acks: 0, pendingSessions: 0, toNodes: 0, fromNodes: 0, fromNodesDropped: 0 };
  /** Connections by user name (a user may have several: two tabs). */
  readonly #byName = new Map<string, Set<Client>>();
  readonly #sessions = new Map<string, Session>();
  readonly #buckets = new Map<string, TokenBucket>();
  #expiredAt = 0;

  constructor(
    readonly o: ResolvedChatOptions,
    readonly tracer: Tracer,
    readonly out: DmOut,
    readonly cluster?: ChatCluster,
  ) {}

  /** A connection said hello. */
  add(client: Client): void {
    const name = client.name!;
    let set = this.#byName.get(name);
    if (!set) this.#byName.set(name, (set = new Set()));
    set.add(client);
  }

  /** A connection ended: its sessions go (the other end's page notices its data channel close, or its ICE timeout). */
  remove(client: Client): void {
    const set = client.name === undefined ? undefined : this.#byName.get(client.name);
    if (!set?.delete(client)) return;
    if (set.size === 0) {
      this.#byName.delete(client.name!);
      this.#buckets.delete(client.name!);
    }
    for (const [id, s] of this.#sessions) if (s.offerer === client || s.answerer === client) this.#drop(id, s);
  }

  handle(client: Client, name: string, m: DmClientMessage): void {
    const cid = m.type === 'signal' ? m.session : m.id;
    if (m.to === name) return this.out.error(client, ChatCodes.PEER, 'a DM to yourself', { cid });
    if (m.type === 'signal') return this.#signal(client, name, m);
    const targets = this.#shared(client, m.to);
    const nodes = this.cluster?.nodesWith(client.rooms.keys(), m.to) ?? [];
    if (targets.length === 0 && nodes.length === 0) return this.out.error(client, ChatCodes.PEER, `${m.to} is not online in a room you are in`, { cid });
    if (m.type === 'dm-ack') {
      this.stats.acks++;
      for (const t of targets) this.out.send(t, { type: 'dm-ack', from: name, id: m.id });
      for (const node of nodes) this.#toNode(node, name, m);
      return;
    }
    const chars = [...m.text].length;
    if (chars === 0 || m.text.trim() === '') return this.out.error(client, ChatCodes.INVALID, 'an empty message', { cid });
    if (chars > this.o.maxMessageChars) {
      this.out.error(client, ChatCodes.LIMIT, `a message has at most ${this.o.maxMessageChars} characters`, { limit: 'maxMessageChars', cid });
      return this.out.bad(client);
    }
    if (!this.#bucket(name).take()) return this.out.error(client, ChatCodes.RATE, `slow down: at most ${this.o.ratePerSecond} messages a second`, { limit: 'ratePerSecond', cid });
    this.stats.relayed++;
    this.stats.relayedBytes += Buffer.byteLength(m.text);
    this.tracer.emit('chat', client.conn.cid, '*', 'dm-relay', () => `DM ${name} -> ${m.to} relayed (${chars} chars${nodes.length > 0 ? `, to ${nodes.length} other node(s)` : ''}), not stored`);
    const out: ServerMessage = { type: 'dm', from: name, id: m.id, text: m.text, t: Date.now() };
    for (const t of targets) this.out.send(t, out);
    for (const node of nodes) this.#toNode(node, name, m);
  }

  /**
   * A DM message from `from`, a user on `node`, to a user here: checked again (the bus is not trusted more than a
   * client), then handed on as if it came from a local connection.
   */
  remote(node: string, from: string, raw: unknown): void {
    this.stats.fromNodes++;
    const drop = (why: string): void => {
      this.stats.fromNodesDropped++;
      this.tracer.emit('chat', 'chat-cluster', '*', 'dm-dropped', () => `DM message from ${from} on node ${node} dropped: ${why}`);
    };
    const m = typeof raw === 'object' && raw !== null ? parseClientMessage(JSON.stringify(raw)) : { invalid: 'not an object' };
    if ('invalid' in m) return drop(m.invalid);
    if (!isDmMessage(m)) return drop(`not a DM message (${m.type})`);
    if (m.type === 'dm' && [...m.text].length > this.o.maxMessageChars) return drop('over maxMessageChars');
    // Only connections of m.to in a room where the bus says `from` is online.
    const targets = this.#local(m.to).filter((c) => [...c.rooms.keys()].some((r) => this.cluster?.isRemoteOnline(r, from)));
    if (m.type === 'dm') {
      if (targets.length === 0) return drop(`${m.to} is not online here in a room with ${from}`);
      const out: ServerMessage = { type: 'dm', from, id: m.id, text: m.text, t: Date.now() };
      for (const t of targets) this.out.send(t, out);
      return;
    }
    if (m.type === 'dm-ack') {
      for (const t of targets) this.out.send(t, { type: 'dm-ack', from, id: m.id });
      return;
    }
    const size = m.kind === 'candidate' ? Buffer.byteLength(m.candidate?.candidate ?? '') : Buffer.byteLength(m.sdp ?? '');
    if (m.kind !== 'bye' && size > this.o[m.kind === 'candidate' ? 'maxCandidateBytes' : 'maxSdpBytes']) return drop(`an oversized ${m.kind}`);
    const now = Date.now();
    this.#expire(now);
    let s = this.#sessions.get(m.session);
    if (m.kind === 'offer') {
      if (s) return drop(`session ${m.session} exists`);
      const target = targets[0];
      if (!target) return drop(`${m.to} is not online here in a room with ${from}`);
      s = { id: m.session, offerer: { node, name: from }, answerer: target, answered: false, at: now };
      this.#sessions.set(m.session, s);
      this.stats.pendingSessions++;
    }
    const here = s && (isRemote(s.offerer) ? s.answerer : s.offerer);
    const there = s && (isRemote(s.offerer) ? s.offerer : s.answerer);
    if (!s || !here || isRemote(here) || !there || !isRemote(there) || there.node !== node || there.name !== from || here.name !== m.to || here.closed) {
      return drop(`no DM session ${m.session} between ${from} and ${m.to} here`);
    }
    if (m.kind === 'answer') {
      if (s.answerer !== there || s.answered) return drop(`session ${m.session} takes no answer now`);
      s.answered = true;
      this.stats.pendingSessions--;
    }
    this.#deliver(here, from, m, size);
    if (m.kind === 'bye') this.#drop(m.session, s);
  }

  #signal(client: Client, name: string, m: Extract<DmClientMessage, { type: 'signal' }>): void {
    const now = Date.now();
    this.#expire(now);
    const size = m.kind === 'candidate' ? Buffer.byteLength(m.candidate?.candidate ?? '') : Buffer.byteLength(m.sdp ?? '');
    const limit = m.kind === 'candidate' ? 'maxCandidateBytes' : 'maxSdpBytes';
    if (m.kind !== 'bye' && size > this.o[limit]) {
      this.out.error(client, ChatCodes.LIMIT, `${m.kind === 'candidate' ? 'an ICE candidate' : 'an SDP'} of ${size} bytes: at most ${this.o[limit]} (${limit})`, { limit, cid: m.session });
      return this.out.bad(client);
    }
    let s = this.#sessions.get(m.session);
    if (m.kind === 'offer') {
      if (s) return this.out.error(client, ChatCodes.STATE, `DM session ${m.session} exists`, { cid: m.session });
      // A user here first; else the first other node where they are in a room with the sender.
      const node = this.cluster?.nodesWith(client.rooms.keys(), m.to)[0];
      const target: End | undefined = this.#shared(client, m.to)[0] ?? (node === undefined ? undefined : { node, name: m.to });
      if (!target) return this.out.error(client, ChatCodes.PEER, `${m.to} is not online in a room you are in`, { cid: m.session });
      let pending = 0;
      for (const x of this.#sessions.values()) if (!x.answered && !isRemote(x.offerer) && x.offerer.name === name) pending++;
      if (pending >= this.o.maxDmSessionsPerUser) {
        this.out.error(client, ChatCodes.LIMIT, `at most ${this.o.maxDmSessionsPerUser} DM sessions waiting for an answer (maxDmSessionsPerUser)`, { limit: 'maxDmSessionsPerUser', cid: m.session });
        return this.out.bad(client);
      }
      s = { id: m.session, offerer: client, answerer: target, answered: false, at: now };
      this.#sessions.set(m.session, s);
      this.stats.pendingSessions++;
    }
    // Every later signal belongs to a live session, between its two connections, addressed to the other one.
    const other = s === undefined ? undefined : s.offerer === client ? s.answerer : s.answerer === client ? s.offerer : undefined;
    if (!s || !other || other.name !== m.to || (!isRemote(other) && other.closed)) return this.out.error(client, ChatCodes.STATE, `no DM session ${m.session} between you and ${m.to}`, { cid: m.session });
    if (m.kind === 'answer') {
      if (client !== s.answerer || s.answered) return this.out.error(client, ChatCodes.STATE, `DM session ${m.session} takes no answer from you now`, { cid: m.session });
      s.answered = true;
      this.stats.pendingSessions--;
    }
    if (isRemote(other)) {
      this.stats.signals++;
      this.stats.signalBytes += size;
      this.tracer.emit('chat', client.conn.cid, '*', `dm-${m.kind}`, () => `DM signal ${m.kind} ${name} -> ${m.to} on node ${other.node} (session ${m.session}, ${size} bytes)`);
      this.#toNode(other.node, name, m);
    } else this.#deliver(other, name, m, size);
    if (m.kind === 'bye') this.#drop(m.session, s);
  }

  /** A signal to a connection here. */
  #deliver(to: Client, from: string, m: Extract<DmClientMessage, { type: 'signal' }>, size: number): void {
    this.stats.signals++;
    this.stats.signalBytes += size;
    this.tracer.emit('chat', to.conn.cid, '*', `dm-${m.kind}`, () => `DM signal ${m.kind} ${from} -> ${m.to} (session ${m.session}, ${size} bytes)`);
    const out: ServerMessage = { type: 'signal', from, session: m.session, kind: m.kind };
    if (m.sdp !== undefined) out.sdp = m.sdp;
    if (m.candidate !== undefined) out.candidate = m.candidate;
    this.out.send(to, out);
  }

  #toNode(node: string, from: string, m: DmClientMessage): void {
    this.stats.toNodes++;
    this.cluster?.dm(node, from, m);
  }

  /** The connections of `to` that share a room with `client` (DMs go only between people who can see each other). */
  #shared(client: Client, to: string): Client[] {
    return this.#local(to).filter((c) => [...c.rooms.keys()].some((r) => client.rooms.has(r)));
  }

  #local(name: string): Client[] {
    return [...(this.#byName.get(name) ?? [])].filter((c) => !c.closed);
  }

  #expire(now: number): void {
    if (now - this.#expiredAt < 1000) return;
    this.#expiredAt = now;
    for (const [id, s] of this.#sessions) if (now - s.at > this.o.dmSessionTtlMs) this.#drop(id, s);
  }

  #drop(id: string, s: Session): void {
    if (!this.#sessions.delete(id)) return;
    if (!s.answered) this.stats.pendingSessions--;
  }

  #bucket(name: string): TokenBucket {
    let b = this.#buckets.get(name);
    if (!b) this.#buckets.set(name, (b = new TokenBucket(this.o.ratePerSecond, this.o.rateBurst)));
    return b;
  }
}
