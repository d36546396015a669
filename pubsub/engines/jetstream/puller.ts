/**
 * One pull loop per JetStream consumer (a partition stream's group durable, or a fan-out subscriber's ephemeral) in
 * this process, shared by the local members it feeds. JetStream spreads messages over the pull requests of different
 * processes; inside one process the puller hands them out itself, to the member with the most room (nats-server 2.9
 * serves one pull request of a connection before the others, so per-member pulls would starve all but one member).
 * It pulls only as much as its members have room for (maxAckPending, pause), so flow control reaches the server.
 */
import { createInbox, type JsMsg } from 'nats';
// nats.js's JsMsg from a raw message (ack, nak, term, working, info): not re-exported by its main module.
import { toJsMsg } from 'nats/lib/jetstream/jsmsg.js';
import type { StreamMeta } from './codec.ts';
import type { JetStreamEngineImpl } from './engine.ts';

/** JetStream's API subject prefix (no domain: wirelab's clusters are one domain). */
const JS_API = '$JS.API';

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
  /** The pull request waiting for its answer, if any. */
  private current: { left: number; end(status?: number): void } | undefined;

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
    // An ephemeral consumer's request is dropped at once (the consumer is deleted with it); a durable's runs out.
    if (!this.durable) this.current?.end();
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

  /**
   * Pull requests (`$JS.API.CONSUMER.MSG.NEXT`) answered on one inbox this puller keeps for its whole life, not
   * nats.js's fetch(): fetch closes its inbox on a client timer 5 % past `expires`, and a message nats-server sent into
   * a request that timer had already given up on was dropped, then waited out ackWait (30 s by default) as if a member
   * held it. Here a late message still lands and is handed out (or, after stop(), kept and nak'd).
   */
  private async run(): Promise<void> {
    const opts = this.engine.options;
    const nc = this.engine.nc;
    const inbox = createInbox();
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return;
        const code = msg.headers?.code ?? 0;
        if (code !== 0 && msg.data.length === 0) {
          // 408 the request expired, 404 / 409 nothing to give or the consumer is gone, 100 a heartbeat (not asked).
          if (code !== 100) this.current?.end(code);
          return;
        }
        if (this.current && --this.current.left <= 0) this.current.end();
        this.dispatch(toJsMsg(msg));
      },
    });
    let failures = 0;
    try {
      while (!this.stopped && !this.engine.isClosed) {
        while (!this.stopped && this.room() === 0) await new Promise<void>((r) => this.wakers.push(r));
        if (this.stopped) break;
        const t0 = performance.now();
        const batch = Math.max(1, Math.min(opts.pullBatch, this.room()));
        const status = await new Promise<number | undefined>((resolve) => {
          // Past twice `expires` with no answer (a lost request, a node that went away): asked again.
          const timer = setTimeout(() => end(-1), opts.pullExpiresMs * 2);
          let ended = false;
          const end = (code?: number): void => {
            if (ended) return;
            ended = true;
            clearTimeout(timer);
            if (this.current === request) this.current = undefined;
            resolve(code);
          };
          const request = { left: batch, end };
          this.current = request;
          try {
            nc.publish(`${JS_API}.CONSUMER.MSG.NEXT.${this.stream}.${this.consumer}`, JSON.stringify({ batch, expires: opts.pullExpiresMs * 1_000_000 }), { reply: inbox });
          } catch (err) {
            this.engine.traceError(this.consumer, `pull ${this.stream}`, err);
            end(-1);
          }
        });
        if (status === undefined || status === 408) {
          failures = 0;
          continue;
        }
        // The topic was deleted (seen here or announced by the server); a "not found" otherwise is the cluster
        // recovering (its meta layer not ready yet after a restart), and a request that ended at once (the
        // connection is down) would spin: each waited for like a failure, backing off to 2 s.
        if (this.stopped || this.engine.isClosed || this.engine.deletedStreams.has(this.stream)) break;
        if (status !== -1) this.engine.traceError(this.consumer, `pull ${this.stream}`, new Error(`pull request answered ${status}`));
        failures++;
        // At least the backoff from the request's start (a request that timed out has waited long enough already).
        const backoff = Math.min(2000, opts.retryDelayMs * 2 ** Math.min(failures - 1, 5));
        await new Promise((r) => setTimeout(r, Math.max(0, backoff - (performance.now() - t0))));
      }
    } finally {
      // The loop ends only once its last request was answered (a durable's after `expires`: it cannot be cancelled in
      // nats-server 2.9), so nothing more comes to the inbox.
      this.current?.end();
      sub.unsubscribe();
    }
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
