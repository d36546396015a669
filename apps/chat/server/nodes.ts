/**
 * Presence, typing and receipts of the chat server's rooms (never stored). On one node they are this process's members
 * only (as before multi-node); with a cluster (server/cluster.ts, `--engine jetstream`) a room's online list is the
 * union over the nodes, a user appears once however many nodes and tabs they are on (join when the first appears
 * anywhere, leave when the last is gone), and typing and receipts reach the members of every node.
 */
import type { ReceiptState, ServerMessage } from '../protocol.ts';
import type { ChatCluster, ClusterHooks, SnapshotRoom } from './cluster.ts';
import type { Client, Room } from './state.ts';

export interface PresenceHost {
  readonly rooms: ReadonlyMap<string, Room>;
  /** Sends to every member of the room that is not catching up (but `except`). */
  toRoom(room: Room, m: ServerMessage, except?: Client): void;
  /** A DM message from a user on another node (server/dm.ts). */
  remoteDm(node: string, from: string, m: unknown): void;
}

export class RoomPresence {
  constructor(
    private readonly host: PresenceHost,
    readonly cluster: ChatCluster | undefined,
  ) {}

  start(): Promise<void> {
    return this.cluster ? this.cluster.start(this.#hooks()) : Promise.resolve();
  }

  async close(): Promise<void> {
    await this.cluster?.close();
  }

  /** Who is online in the room, sorted: here, and on the other nodes. */
  online(room: Room): string[] {
    const here = room.online.keys();
    return (this.cluster ? [...new Set([...here, ...this.cluster.remoteOnline(room.name)])] : [...here]).sort();
  }

  /** A room going live here starts with the receipts the other nodes told of. */
  seed(room: Room): void {
    const heard = this.cluster?.remoteReceipts(room.name);
    if (heard) for (const [user, r] of heard) room.receipts.set(user, { ...r });
  }

  /** `user`'s first connection here is in the room: the others see a join unless the user is already on another node. */
  arrived(room: Room, user: string, except: Client): void {
    this.cluster?.local(room.name, user, true);
    if (!this.cluster?.isRemoteOnline(room.name, user)) this.#announce(room, user, 'join', except);
  }

  /** `user`'s last connection here left the room. */
  departed(room: Room, user: string): void {
    this.cluster?.local(room.name, user, false);
    if (!this.cluster?.isRemoteOnline(room.name, user)) this.#announce(room, user, 'leave');
  }

  typing(room: Room, user: string, on: boolean, except: Client): void {
    this.host.toRoom(room, { type: 'typing', room: room.name, user, on }, except);
    this.cluster?.typing(room.name, user, on);
  }

  /** A member's receipt: kept per room (a later joiner gets it), relayed when it moves forward. */
  receipt(room: Room, user: string, offset: number, state: ReceiptState, except: Client): void {
    if (this.#apply(room, user, offset, state, except)) this.cluster?.receipt(room.name, user, offset, state);
  }

  #apply(room: Room, user: string, offset: number, state: ReceiptState, except?: Client): boolean {
    let r = room.receipts.get(user);
    if (!r) room.receipts.set(user, (r = { delivered: -1, seen: -1 }));
    if (offset <= r[state]) return false;
    r[state] = offset;
    if (state === 'seen' && offset > r.delivered) r.delivered = offset;
    this.host.toRoom(room, { type: 'receipt', room: room.name, user, offset, state }, except);
    return true;
  }

  #announce(room: Room, user: string, state: 'join' | 'leave', except?: Client): void {
    this.host.toRoom(room, { type: 'presence', room: room.name, user, state, online: this.online(room) }, except);
  }

  /** What the other nodes' news does to this node's members (rooms not live here: nothing; they start from the cluster). */
  #hooks(): ClusterHooks {
    return {
      presence: (name, user, _before, after) => {
        const room = this.host.rooms.get(name);
        // Online here too: nothing changed for the members.
        if (room && !room.online.has(user)) this.#announce(room, user, after ? 'join' : 'leave');
      },
      typing: (name, user, on) => {
        const room = this.host.rooms.get(name);
        if (room) this.host.toRoom(room, { type: 'typing', room: name, user, on });
      },
      receipt: (name, user, offset, state) => {
        const room = this.host.rooms.get(name);
        if (room) this.#apply(room, user, offset, state);
      },
      dm: (node, from, m) => this.host.remoteDm(node, from, m),
      snapshot: () => {
        const out: SnapshotRoom[] = [];
        for (const room of this.host.rooms.values()) {
          if (room.online.size === 0) continue;
          out.push({ room: room.name, users: [...room.online.keys()], receipts: [...room.receipts].map(([u, r]) => [u, r.delivered, r.seen]) });
        }
        return out;
      },
    };
  }
}
