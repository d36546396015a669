/**
 * Partitioned groups across processes. Every wirelab process on the cluster with members in a partitioned group keeps
 * one record per member in the group bucket (`<group>.m.<instance>-<member>`) and rewrites it every
 * `memberLeaseMs / 3` (a heartbeat: the key's revision moves). A record whose revision has not moved for
 * `memberLeaseMs`, as seen by this process's own monotonic clock, has expired (its process died or lost the cluster):
 * it is deleted and left out. No clocks are compared across processes (nats-server 2.9's KV has no per-key TTL).
 *
 * Every process computes the same assignment from the same live list (groups.ts `assignPartitions`: sorted partition
 * streams, round robin over the sorted member keys), so each partition stream has one owner across processes once the
 * processes have seen the same list; a join or leave is announced on `_WL.<streamPrefix>.rebalance` so the others look
 * at once instead of at their next heartbeat. While two processes disagree (for at most one heartbeat), two members
 * may pull the same partition's durable: the durable's max_ack_pending of 1 still gives one message at a time, in
 * order, to one of them.
 */
import { randomBytes } from 'node:crypto';
import type { KV } from 'nats';
import { encodeName } from './codec.ts';

/** This process on the cluster (a pid alone can repeat across hosts). */
export const INSTANCE = randomBytes(4).toString('hex');

export interface MemberRecord {
  wirelab: 1;
  group: string;
  member: string;
  instance: string;
  pid: number;
}

export interface MembershipHost {
  groupsKv(): Promise<KV>;
  /** Ids of this process's members of the group (partitioned mode). */
  localMembers(group: string): string[];
  /** The live list changed: assign the partitions again. */
  rebalance(group: string): void;
  /** Tells the other processes to look now. */
  announce(group: string): void;
  traceError(cid: string, what: string, err: unknown): void;
  readonly leaseMs: number;
}

export class GroupMembership {
  /** Key -> its last revision and when (this process's monotonic clock) it last moved. */
  private readonly seen = new Map<string, { revision: number; movedAt: number }>();
  private live: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failed = false;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly host: MembershipHost,
    readonly group: string,
  ) {}

  private get prefix(): string {
    return `${encodeName(this.group)}.m.`;
  }

  keyOf(member: string): string {
    return `${this.prefix}${INSTANCE}-${member}`;
  }

  /** The live member keys (sorted), this process's own always included. */
  members(): string[] {
    const own = this.host.localMembers(this.group).map((m) => this.keyOf(m));
    return [...new Set([...this.live, ...own])].sort();
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.beat(), Math.max(50, Math.floor(this.host.leaseMs / 3)));
    this.timer.unref();
  }

  /** One heartbeat (runs are serialized; one asked for during a run runs after it). Resolves once the list is read. */
  beat(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.beat();
      }
    });
    return this.running;
  }

  private async run(): Promise<void> {
    const before = this.members().join(',');
    try {
      const kv = await this.host.groupsKv();
      for (const member of this.host.localMembers(this.group)) {
        const r: MemberRecord = { wirelab: 1, group: this.group, member, instance: INSTANCE, pid: process.pid };
        await kv.put(this.keyOf(member), JSON.stringify(r));
      }
      await this.read(kv);
    } catch (err) {
      // The cluster is away: keep the assignment; nothing expires while nobody can heartbeat.
      if (!this.failed) this.host.traceError('engine', `group ${this.group} heartbeat`, err);
      this.failed = true;
      return;
    }
    if (this.members().join(',') !== before) this.host.rebalance(this.group);
  }

  private async read(kv: KV): Promise<void> {
    const now = performance.now();
    const grace = this.failed;
    this.failed = false;
    const keys: string[] = [];
    for await (const k of await kv.keys(`${this.prefix}>`)) keys.push(k);
    const present = new Set<string>();
    const live: string[] = [];
    for (const key of keys) {
      const e = await kv.get(key);
      if (!e || e.operation !== 'PUT') continue;
      present.add(key);
      const s = this.seen.get(key);
      if (!s || s.revision !== e.revision || grace) this.seen.set(key, { revision: e.revision, movedAt: now });
      if (now - this.seen.get(key)!.movedAt < this.host.leaseMs) live.push(key);
      else {
        this.seen.delete(key);
        await kv.delete(key).catch((err: unknown) => this.host.traceError('engine', `expire ${key}`, err));
      }
    }
    for (const key of this.seen.keys()) if (!present.has(key)) this.seen.delete(key);
    this.live = live.sort();
  }

  /** A local member left: its record goes now (the others rebalance at once), not after its lease. */
  async leave(member: string): Promise<void> {
    const key = this.keyOf(member);
    this.live = this.live.filter((k) => k !== key);
    try {
      await (await this.host.groupsKv()).delete(key);
      this.host.announce(this.group);
    } catch (err) {
      this.host.traceError('engine', `group ${this.group} leave`, err);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
