/**
 * The lineage of recent messages, in memory and bounded: the last `maxMessages` messages (by first step), each with at
 * most `maxStepsPerMessage` steps (a message nak'd forever stops growing its list). For the admin API and the labs.
 *
 * It sits on the delivery path (one 'delivered' step per subscriber per message), so adding a step allocates nothing
 * but array room: the engine's step objects are kept as they are with the session they went to beside them, and the
 * entries are built only when read. Consecutive steps of one message (a fan-out burst) reuse the last lookup.
 */
import type { LineageStep } from '../engines/types.ts';
import type { LineageEntry } from './types.ts';

/** Who a step went to: one object per session, shared by all its steps. */
export interface LineageOwner {
  session: string;
  user?: string;
}

type Stored = Exclude<LineageStep, { step: 'duplicate' }> | Extract<LineageEntry, { step: 'published' }>;

interface MessageLineage {
  steps: Stored[];
  owners: (LineageOwner | undefined)[];
}

export class LineageStore {
  readonly #messages = new Map<string, MessageLineage>();
  /** Keys in the order they came, a ring of maxMessages: the oldest is evicted without walking the Map. */
  readonly #ring: (string | undefined)[];
  #ringPos = 0;
  #last: { topic: string; partition: number; offset: number; rec: MessageLineage } | undefined;

  constructor(
    readonly maxMessages: number,
    readonly maxStepsPerMessage = 64,
  ) {
    this.#ring = new Array<string | undefined>(maxMessages);
  }

  #record(topic: string, partition: number, offset: number): MessageLineage {
    const last = this.#last;
    if (last !== undefined && last.offset === offset && last.partition === partition && last.topic === topic) return last.rec;
    const k = `${topic}\u0000${partition}\u0000${offset}`;
    let rec = this.#messages.get(k);
    if (rec === undefined) {
      rec = { steps: [], owners: [] };
      const evict = this.#ring[this.#ringPos];
      if (evict !== undefined) this.#messages.delete(evict);
      this.#ring[this.#ringPos] = k;
      this.#ringPos = (this.#ringPos + 1) % this.maxMessages;
      this.#messages.set(k, rec);
    }
    this.#last = { topic, partition, offset, rec };
    return rec;
  }

  add(step: Stored, owner?: LineageOwner): void {
    if (this.maxMessages === 0) return;
    const rec = this.#record(step.topic, step.partition, step.offset);
    if (rec.steps.length >= this.maxStepsPerMessage) return;
    // 'published' is recorded when the append resolves, after the engine's 'persisted' (and maybe 'delivered'): it
    // goes first, since it is what started the message.
    if (step.step === 'published') {
      rec.steps.unshift(step);
      rec.owners.unshift(undefined);
    } else {
      rec.steps.push(step);
      rec.owners.push(owner);
    }
  }

  get(topic: string, partition: number, offset: number): LineageEntry[] | undefined {
    const rec = this.#messages.get(`${topic}\u0000${partition}\u0000${offset}`);
    if (rec === undefined) return undefined;
    return rec.steps.map((s, i) => {
      const o = rec.owners[i];
      const e = { ...s } as LineageEntry;
      if (o !== undefined && e.step !== 'published') {
        e.session = o.session;
        if (o.user !== undefined) e.user = o.user;
      }
      return e;
    });
  }

  get size(): number {
    return this.#messages.size;
  }
}
