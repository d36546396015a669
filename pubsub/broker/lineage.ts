/**
 * The lineage of recent messages, in memory and bounded: the last `maxMessages` messages (by first step), each with at
 * most `maxStepsPerMessage` steps (a message nak'd forever stops growing its list). For the admin API and the labs.
 *
 * It sits on the delivery path (one 'delivered' step per subscriber per message: 50 subscribers, 50 steps), so a
 * 'delivered' step is kept as five slots of one flat array per message (consumer id, attempt, time as milliseconds
 * after the message's first step, the session it went to, its group), not as an object: a fan-out keeps no object
 * per delivery, and the entries are built only when read. Other steps (published, persisted, acked, nak, expired,
 * in-progress, dead-lettered: a few per message) are kept as the engine's step objects. Messages are found by topic,
 * partition and offset without building a key, and consecutive steps of one message reuse the last lookup.
 */
import type { LineageStep } from '../engines/types.ts';
import type { LineageEntry } from './types.ts';

/** Who a step went to: one object per session, shared by all its steps. */
export interface LineageOwner {
  session: string;
  user?: string;
}

type Stored = Exclude<LineageStep, { step: 'duplicate' | 'delivered' }> | Extract<LineageEntry, { step: 'published' }>;

/** Slots per step in MessageLineage.slots. */
const STRIDE = 5;
/** Slot 1 of a stored (non-'delivered') step. */
const OTHER = -1;

interface MessageLineage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** The time of the first step recorded; 'delivered' times are kept relative to it (small integers). */
  readonly t0: number;
  /**
   * STRIDE slots per step, in order. 'delivered': consumer, attempt, t - t0, owner, group. Any other step: the step
   * object, OTHER, 0, owner, undefined.
   */
  readonly slots: (string | number | Stored | LineageOwner | undefined)[];
}

export class LineageStore {
  /** topic -> partition -> offset -> lineage. */
  readonly #topics = new Map<string, (Map<number, MessageLineage> | undefined)[]>();
  /** Messages in the order they came, a ring of maxMessages: the oldest is evicted without walking the maps. */
  readonly #ring: (MessageLineage | undefined)[];
  #ringPos = 0;
  #size = 0;
  #last: MessageLineage | undefined;

  constructor(
    readonly maxMessages: number,
    readonly maxStepsPerMessage = 64,
  ) {
    this.#ring = new Array<MessageLineage | undefined>(maxMessages);
  }

  #find(topic: string, partition: number, offset: number): MessageLineage | undefined {
    return this.#topics.get(topic)?.[partition]?.get(offset);
  }

  #record(topic: string, partition: number, offset: number, t: number): MessageLineage {
    const last = this.#last;
    if (last !== undefined && last.offset === offset && last.partition === partition && last.topic === topic) return last;
    let parts = this.#topics.get(topic);
    if (parts === undefined) this.#topics.set(topic, (parts = []));
    let offsets = parts[partition];
    if (offsets === undefined) parts[partition] = offsets = new Map();
    let rec = offsets.get(offset);
    if (rec === undefined) {
      rec = { topic, partition, offset, t0: t, slots: [] };
      const evict = this.#ring[this.#ringPos];
      if (evict !== undefined) this.#evict(evict);
      this.#ring[this.#ringPos] = rec;
      this.#ringPos = (this.#ringPos + 1) % this.maxMessages;
      offsets.set(offset, rec);
      this.#size++;
    }
    this.#last = rec;
    return rec;
  }

  #evict(rec: MessageLineage): void {
    const parts = this.#topics.get(rec.topic);
    const offsets = parts?.[rec.partition];
    if (offsets === undefined || offsets.get(rec.offset) !== rec) return;
    offsets.delete(rec.offset);
    this.#size--;
    if (offsets.size === 0) {
      parts![rec.partition] = undefined;
      if (parts!.every((p) => p === undefined)) this.#topics.delete(rec.topic);
    }
    if (this.#last === rec) this.#last = undefined;
  }

  /** A 'delivered' step, without an object for it. */
  addDelivered(topic: string, partition: number, offset: number, consumer: string, attempt: number, t: number, group: string | undefined, owner: LineageOwner | undefined): void {
    if (this.maxMessages === 0) return;
    const rec = this.#record(topic, partition, offset, t);
    const s = rec.slots;
    if (s.length >= this.maxStepsPerMessage * STRIDE) return;
    s.push(consumer, attempt, t - rec.t0, owner, group);
  }

  add(step: LineageStep, owner?: LineageOwner): void {
    if (this.maxMessages === 0 || step.step === 'duplicate') return;
    if (step.step === 'delivered') {
      this.addDelivered(step.topic, step.partition, step.offset, step.consumer, step.attempt, step.t, step.group, owner);
      return;
    }
    this.addStep(step, owner);
  }

  addStep(step: Stored, owner?: LineageOwner): void {
    if (this.maxMessages === 0) return;
    const rec = this.#record(step.topic, step.partition, step.offset, step.t);
    const s = rec.slots;
    if (s.length >= this.maxStepsPerMessage * STRIDE) return;
    // 'published' is recorded when the append resolves, after the engine's 'persisted' (and maybe 'delivered'): it
    // goes first, since it is what started the message.
    if (step.step === 'published') s.unshift(step, OTHER, 0, undefined, undefined);
    else s.push(step, OTHER, 0, owner, undefined);
  }

  get(topic: string, partition: number, offset: number): LineageEntry[] | undefined {
    const rec = this.#find(topic, partition, offset);
    if (rec === undefined) return undefined;
    const out: LineageEntry[] = [];
    const s = rec.slots;
    for (let i = 0; i < s.length; i += STRIDE) {
      const o = s[i + 3] as LineageOwner | undefined;
      let e: LineageEntry;
      if (s[i + 1] === OTHER) {
        e = { ...(s[i] as Stored) } as LineageEntry;
        if (e.step === 'published') {
          out.push(e);
          continue;
        }
      } else {
        e = { step: 'delivered', topic, partition, offset, consumer: s[i] as string, attempt: s[i + 1] as number, t: rec.t0 + (s[i + 2] as number) };
        const group = s[i + 4] as string | undefined;
        if (group !== undefined) e.group = group;
      }
      if (o !== undefined) {
        e.session = o.session;
        if (o.user !== undefined) e.user = o.user;
      }
      out.push(e);
    }
    return out;
  }

  get size(): number {
    return this.#size;
  }
}
