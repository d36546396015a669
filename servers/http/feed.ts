/** One event of a feed: a growing id, when it was published (ms since the epoch, sub-ms), and its data. */
export interface FeedEvent {
  id: number;
  at: number;
  data: string;
}

export interface EventFeedOptions {
  /** Events kept for pollers that come back later; older ones are dropped. Default 1000. */
  maxEvents?: number;
}

/**
 * The server-side source of events that polling, long polling, SSE and WebSocket all deliver (the realtime-push lab
 * publishes into one feed and measures each way of getting it out).
 */
export class EventFeed {
  readonly #events: FeedEvent[] = [];
  readonly #subscribers = new Set<(e: FeedEvent) => void>();
  readonly #max: number;
  #lastId = 0;

  constructor(options: EventFeedOptions = {}) {
    this.#max = options.maxEvents ?? 1000;
  }

  get lastId(): number {
    return this.#lastId;
  }

  publish(data: string): FeedEvent {
    const event = { id: ++this.#lastId, at: performance.timeOrigin + performance.now(), data };
    this.#events.push(event);
    if (this.#events.length > this.#max) this.#events.shift();
    for (const fn of this.#subscribers) fn(event);
    return event;
  }

  /** Events with an id above `id`, oldest first. */
  since(id: number): FeedEvent[] {
    if (id >= this.#lastId) return [];
    const first = this.#events.findIndex((e) => e.id > id);
    return first === -1 ? [] : this.#events.slice(first);
  }

  /** Calls `fn` for every event published from now on; returns the unsubscribe function. */
  subscribe(fn: (e: FeedEvent) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }
}
