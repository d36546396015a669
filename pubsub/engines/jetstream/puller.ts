/**
 * One pull loop per JetStream consumer (a partition stream's group durable, or a fan-out subscriber's ephemeral) in
 * this process, shared by the local members it feeds. JetStream spreads messages over the pull requests of different
 * processes; inside one process the puller hands them out itself, to the member with the most room (nats-server 2.9
 * serves one pull request of a connection before the others, so per-member pulls would starve all but one member).
 * It pulls only as much as its members have room for (maxAckPending, pause), so flow control reaches the server.
 */
import type { JsMsg } from 'nats';
import type { StreamMeta } from './codec.ts';
import type { JetStreamEngineImpl } from './engine.ts';

export interface PullMember {
  readonly id: string;
  /** How many more deliveries it takes now (0 while paused or at maxAckPending). */
  room(): number;
  /** A message for this member (delivered at once, or queued while it is paused). */
  take(m: JsMsg, puller: Puller): void;
}

export class Puller {
  private readonly members: PullMember[] = [];
  private stopped = false;
  private wakers: (() => void)[] = [];
  private loop: Promise<void> | undefined;
  private next = 0;
  private readonly stranded: JsMsg[] = [];

  constructor(
    private readonly engine: JetStreamEngineImpl,
    readonly stream: string,
    readonly meta: StreamMeta,
    /** The JetStream consumer's name on the stream. */
    readonly consumer: string,
    /** Acked consumers: a message arriving after stop() is nak'd (so it goes to another process at once). */
    readonly manual: boolean,
    readonly durable: boolean,
  ) {}

  get size(): number {
    return this.members.length;
  }

  add(member: PullMember): void {
    if (!this.members.includes(member)) this.members.push(member);
    this.loop ??= this.run();
    this.kick();
  }

  /** Removes a member; resolves true when it was the last one and the loop has ended (then its messages may go back). */
  async remove(member: PullMember): Promise<boolean> {
    const i = this.members.indexOf(member);
    if (i >= 0) this.members.splice(i, 1);
    if (this.members.length > 0) return false;
    await this.stop();
    return true;
  }

  /**
   * Stops pulling. A durable's pull request cannot be cancelled in nats-server 2.9, so it is left to expire (at most
   * pullExpiresMs); what it still brings is kept and nak'd only then, when no request of this process can take it back.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await this.loop;
    for (const m of this.stranded.splice(0)) if (!this.engine.isClosed) m.nak();
  }

  kick(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private room(): number {
    return this.members.reduce((n, m) => n + m.room(), 0);
  }

  private async run(): Promise<void> {
    const opts = this.engine.options;
    let failures = 0;
    while (!this.stopped && !this.engine.isClosed) {
      while (!this.stopped && this.room() === 0) await new Promise<void>((r) => this.wakers.push(r));
      if (this.stopped) break;
      try {
        const t0 = performance.now();
        let n = 0;
        const c = await this.engine.js.consumers.get(this.stream, this.consumer);
        const iter = await c.fetch({ max_messages: Math.max(1, Math.min(opts.pullBatch, this.room())), expires: opts.pullExpiresMs });
        // An ephemeral consumer's request is simply dropped (the consumer is deleted); a durable's runs out (stop()).
        if (!this.durable) void this.stopping().then(() => iter.stop());
        for await (const m of iter) {
          n++;
          this.dispatch(m);
        }
        // A request that ended empty long before it expires: the connection is down (the client ends it at once).
        // Waited for like a failure, else this loop would spin without yielding to timers.
        if (n === 0 && performance.now() - t0 < opts.pullExpiresMs / 2) {
          failures++;
          await new Promise((r) => setTimeout(r, Math.min(2000, opts.retryDelayMs * 2 ** Math.min(failures - 1, 5))));
          continue;
        }
        failures = 0;
      } catch (err) {
        if (this.stopped || this.engine.isClosed) break;
        this.engine.traceError(this.consumer, `pull ${this.stream}`, err);
        // The topic was deleted (seen here or announced by the server). A "not found" otherwise is the cluster
        // recovering (its meta layer not ready yet after a restart): tried again, backing off to 2 s.
        if (this.engine.deletedStreams.has(this.stream)) break;
        failures++;
        await new Promise((r) => setTimeout(r, Math.min(2000, opts.retryDelayMs * 2 ** Math.min(failures - 1, 5))));
        continue;
      }
    }
  }

  private stopping(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.stopped) resolve();
        else this.wakers.push(check);
      };
      check();
    });
  }

  private dispatch(m: JsMsg): void {
    if (this.members.length === 0 || this.stopped) {
      if (this.manual) this.stranded.push(m);
      return;
    }
    // Round robin over the members with room; when none has any (pulled just before a pause), the next one queues it.
    let pick: PullMember | undefined;
    for (let k = 0; k < this.members.length && !pick; k++) {
      const cand = this.members[(this.next + k) % this.members.length]!;
      if (cand.room() > 0) pick = cand;
    }
    pick ??= this.members[this.next % this.members.length]!;
    this.next = (this.members.indexOf(pick) + 1) % this.members.length;
    pick.take(m, this);
  }
}
