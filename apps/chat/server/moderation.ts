/**
 * Moderation hooks of a room's owner (issue 15): mute (no messages for a while, or until lifted) and kick (out of the
 * room, no rejoin for kickBanMs). Both are stored in the room's log (`mute` / `kick` events), so every member sees them
 * and, multi-node, every node applies the ones another node's owner stored (`moderated`, from the live subscription).
 */
import type { Session } from '../../../pubsub/broker/types.ts';
import { ChatCodes, type ChatEvent, type ClientMessage, type StoredEvent } from '../protocol.ts';
import type { ResolvedChatOptions } from './options.ts';
import { Expiring, type ChatOut, type Client, type Member, type Room } from './state.ts';

/** What moderation needs of the rooms (rooms.ts). */
export interface ModerationHost {
  /** The members of a live room here (none when it is not live). */
  members(room: string): Iterable<Member>;
  leave(member: Member, reason: string): void;
}

export class Moderation {
  readonly #muted = new Expiring();
  readonly #banned = new Expiring();

  constructor(
    private readonly session: Session,
    private readonly o: ResolvedChatOptions,
    private readonly out: ChatOut,
    private readonly host: ModerationHost,
  ) {}

  /** How long `user` stays muted in `room`, in ms (0: not muted). */
  mutedFor(room: string, user: string): number {
    return this.#muted.left(room, user);
  }

  /** How long `user` may not rejoin `room` after a kick, in ms (0: may). */
  bannedFor(room: string, user: string): number {
    return this.#banned.left(room, user);
  }

  async moderate(client: Client, name: string, room: Room, m: Extract<ClientMessage, { type: 'mute' | 'kick' }>): Promise<void> {
    if (room.owner !== name) return this.out.error(client, ChatCodes.FORBIDDEN, `only the room's owner (${room.owner ?? 'nobody'}) may ${m.type}`, { room: room.name });
    if (m.user === name) return this.out.error(client, ChatCodes.FORBIDDEN, `the owner may not ${m.type} themself`, { room: room.name });
    if (m.type === 'mute') {
      const until = m.ms === 0 ? 0 : Date.now() + Math.min(m.ms, 86_400_000);
      this.#muted.set(room.name, m.user, until);
      await this.session.publish({ topic: room.topic, payload: Buffer.from(JSON.stringify({ kind: 'mute', user: name, target: m.user, until } satisfies StoredEvent)) });
      return;
    }
    this.#banned.set(room.name, m.user, Date.now() + this.o.kickBanMs);
    await this.session.publish({ topic: room.topic, payload: Buffer.from(JSON.stringify({ kind: 'kick', user: name, target: m.user } satisfies StoredEvent)) });
    for (const member of [...room.members]) if (member.client.name === m.user) this.host.leave(member, `kicked by ${name}`);
  }

  /** A stored event from the live subscription: a mute or kick (maybe from another node's owner) holds here too. */
  moderated(ev: ChatEvent | undefined): void {
    if (ev?.target === undefined) return;
    if (ev.kind === 'mute') this.#muted.set(ev.room, ev.target, ev.until ?? 0);
    if (ev.kind !== 'kick') return;
    this.#banned.set(ev.room, ev.target, ev.t + this.o.kickBanMs);
    for (const member of [...this.host.members(ev.room)]) if (member.client.name === ev.target) this.host.leave(member, `kicked by ${ev.user}`);
  }
}
