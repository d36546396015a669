/**
 * Shared pieces of the mq-problems lab: a broker per scenario (torn down when the lab ends), sessions, numbered
 * messages and a tally that turns the side effects a consumer performed into the scoreboard (sent / processed / lost /
 * duplicated / out of order / late). Every number comes from what the consumers did, never from the scenario's plan.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabContext } from '../../core/lab/index.ts';
import { createBroker, type Broker, type BrokerOptions, type Credentials, type Message, type Session, type SubscribeInput, type Subscription } from '../../pubsub/broker/index.ts';

export interface Score {
  sent: number;
  processed: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  late: number;
}

/** One scoreboard row: problem, variant, the score and what the row's claim said. */
export interface Row {
  problem: string;
  variant: string;
  score: Score;
}

/** The payload of every numbered message: id (unique), key (an entity), seq (per key, from 0), t (publish time). */
export interface Numbered {
  id: string;
  key: string;
  seq: number;
  t: number;
}

export const encode = (n: Numbered): Buffer => Buffer.from(JSON.stringify(n));
export const decode = (m: Pick<Message, 'payload'>): Numbered => JSON.parse(m.payload.toString('utf8')) as Numbered;

/** N numbered messages over `keys` keys, round-robin: id `m<i>`, seq per key. */
export function numbered(n: number, keys = 1): Numbered[] {
  const seqs = new Map<string, number>();
  const out: Numbered[] = [];
  for (let i = 0; i < n; i++) {
    const key = `k${i % keys}`;
    const seq = seqs.get(key) ?? 0;
    seqs.set(key, seq + 1);
    out.push({ id: `m${i}`, key, seq, t: 0 });
  }
  return out;
}

/**
 * The consumer side's record of side effects (a payment made, a row written): one entry each time a handler performed
 * it, in the order performed.
 */
export class Tally {
  sent = 0;
  readonly effects: Array<{ id: string; key: string; seq: number; latencyMs: number }> = [];
  effect(n: Numbered): void {
    this.effects.push({ id: n.id, key: n.key, seq: n.seq, latencyMs: Date.now() - n.t });
  }
  /** `lateMs`: an effect performed more than this after its publish counts as late. */
  score(lateMs = Infinity): Score {
    const seen = new Set<string>();
    const maxSeq = new Map<string, number>();
    let outOfOrder = 0;
    let late = 0;
    for (const e of this.effects) {
      if (e.latencyMs > lateMs) late++;
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      const max = maxSeq.get(e.key) ?? -1;
      if (e.seq < max) outOfOrder++;
      else maxSeq.set(e.key, e.seq);
    }
    return { sent: this.sent, processed: this.effects.length, lost: this.sent - seen.size, duplicated: this.effects.length - seen.size, outOfOrder, late };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `pred()` holds (true) or `ms` passed (false); polls every 5 ms. */
export async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}


export class Env {
  #dirs: string[] = [];
  constructor(readonly ctx: LabContext) {
    ctx.defer(async () => {
      for (const d of this.#dirs) await rm(d, { recursive: true, force: true });
    });
  }

  async dir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'wirelab-mq-'));
    this.#dirs.push(d);
    return d;
  }

  /** A broker closed when the lab ends (closing twice is harmless: closed() is checked). */
  async broker(options: BrokerOptions = {}): Promise<Broker> {
    const b = await createBroker({ fsync: 'never', tracer: this.ctx.tracer, ...options });
    let closed = false;
    const close = b.close.bind(b);
    b.close = async () => {
      if (closed) return;
      closed = true;
      await close();
    };
    this.ctx.defer(() => b.close());
    return b;
  }

  session(b: Broker, name: string, credentials?: Credentials): Promise<Session> {
    return b.connect({ door: 'internal', peer: `lab:${name}`, tls: false, clientId: name, ...(credentials ? { credentials } : {}) });
  }
}

/** Publishes every message (stamping its publish time), one after the other; returns how many were accepted. */
export async function publishAll(s: Session, topic: string, msgs: Numbered[], extra: (n: Numbered) => Record<string, unknown> = () => ({})): Promise<number> {
  let ok = 0;
  for (const n of msgs) {
    n.t = Date.now();
    await s.publish({ topic, payload: encode(n), key: n.key, acks: 1, ...extra(n) });
    ok++;
  }
  return ok;
}

export interface Member {
  session: Session;
  sub: Subscription;
  /** Deliveries this member received, with their attempt numbers. */
  received: Message[];
  /** Ends the member as a crash would: the session goes, nothing more is acked. */
  crash(): Promise<void>;
}

/**
 * A consumer: `handle(message, member)` runs for every delivery, one at a time in arrival order (a single-threaded
 * consumer); a handler that throws is a consumer that failed on that message (no ack).
 */
export async function member(env: Env, b: Broker, name: string, input: SubscribeInput, handle: (m: Message, me: Member) => unknown): Promise<Member> {
  const session = await env.session(b, name);
  let chain: Promise<unknown> = Promise.resolve();
  let dead = false;
  const me = { session, received: [] as Message[] } as unknown as Member;
  me.crash = async () => {
    dead = true;
    await session.close('crash');
  };
  me.sub = await session.subscribe(input, (m) => {
    me.received.push(m);
    chain = chain.then(() => (dead ? undefined : handle(m, me))).catch(() => undefined);
    return true;
  });
  return me;
}

export const ack = (me: Member, m: Message): void => {
  if (m.deliveryId !== undefined) me.session.ack(m.deliveryId);
};
