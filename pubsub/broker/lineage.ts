/**
 * The lineage of recent messages, in memory and bounded: the last `maxMessages` messages (by first step), each with at
 * most `maxStepsPerMessage` steps (a message nak'd forever stops growing its list). For the admin API and the labs.
 */
import type { LineageStep } from '../engines/types.ts';
import type { LineageEntry } from './types.ts';

export class LineageStore {
  readonly #messages = new Map<string, LineageEntry[]>();
  constructor(
    readonly maxMessages: number,
    readonly maxStepsPerMessage = 64,
  ) {}

  static key(topic: string, partition: number, offset: number): string {
    return `${topic}\u0000${partition}\u0000${offset}`;
  }

  add(entry: LineageEntry): void {
    if (this.maxMessages === 0) return;
    const k = LineageStore.key(entry.topic, entry.partition, entry.offset);
    let list = this.#messages.get(k);
    if (list === undefined) {
      list = [];
      this.#messages.set(k, list);
      if (this.#messages.size > this.maxMessages) this.#messages.delete(this.#messages.keys().next().value!);
    }
    if (list.length >= this.maxStepsPerMessage) return;
    // 'published' is recorded when the append resolves, after the engine's 'persisted': keep the list in time order.
    let i = list.length;
    while (i > 0 && list[i - 1]!.t > entry.t) i--;
    list.splice(i, 0, entry);
  }

  get(topic: string, partition: number, offset: number): LineageEntry[] | undefined {
    const list = this.#messages.get(LineageStore.key(topic, partition, offset));
    return list === undefined ? undefined : [...list];
  }

  get size(): number {
    return this.#messages.size;
  }
}

export type { LineageStep };
