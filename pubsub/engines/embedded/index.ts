/**
 * The embedded engine (issue 12): topics of partition logs (pubsub/log) in one process, with fan-out subscribers,
 * queue groups and partitioned consumer groups whose committed positions survive a restart. Layout under `dir`:
 * `topics/<name>/meta.json` + `topics/<name>/<partition>/` (the log's segments), `groups/<name>.json`.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, PubsubError, WirelabError } from '../../../core/errors.ts';
import type { LogRecord } from '../../log/types.ts';
import { checkTopic } from '../../subjects.ts';
import type {
  AppendRequest, AppendResult, ConsumerSpec, Delivery, Engine, EngineConsumer, GroupInfo, LineageStep, TopicConfig, TopicInfo,
} from '../types.ts';
import { readJson, writeJsonAtomic } from './files.ts';
import { DeliveryGroup, type GroupHost, type GroupMode, type GroupSettings } from './group.ts';
import { groupInfo, groupPositions, type SavedPosition } from './group-view.ts';
import { resolveEmbeddedOptions, type EmbeddedEngineOptions, type ResolvedEmbeddedOptions } from './options.ts';
import { partKey, type Member } from './part.ts';
import { checkConsumerSpec } from './spec.ts';
import { Topic, topicDir } from './topic.ts';

export type { EmbeddedEngineOptions } from './options.ts';
export { EMBEDDED_DEFAULTS } from './options.ts';
export { CONSUMER_DEFAULTS } from './spec.ts';

/** What `<dir>/groups/<name>.json` holds. */
interface GroupFile {
  version: 1;
  name: string;
  mode: 'queue' | 'partitioned';
  settings: GroupSettings;
  positions: SavedPosition[];
}

/** Opens (or creates) the engine's folder, reopening its topics and consumer groups. */
export async function createEmbeddedEngine(options: EmbeddedEngineOptions = {}): Promise<Engine> {
  const engine = new EmbeddedEngine(resolveEmbeddedOptions(options));
  try {
    await engine.open();
  } catch (err) {
    await engine.close(); // the logs opened so far
    throw err;
  }
  return engine;
}

class EmbeddedEngine implements Engine, GroupHost {
  readonly kind = 'embedded' as const;
  readonly readBatchRecords: number;
  private readonly topicMap = new Map<string, Topic>();
  private readonly opening = new Map<string, Promise<Topic>>();
  /** Every live DeliveryGroup by its delivery-id prefix; durable ones also by name. */
  private readonly byId = new Map<string, DeliveryGroup>();
  private readonly durable = new Map<string, DeliveryGroup>();
  private readonly listeners = new Set<(step: LineageStep) => void>();
  private readonly saves = new Map<DeliveryGroup, { running: Promise<void>; dirty: boolean }>();
  /** Topic -> its onStored callback, made once per topic rather than once per append. */
  private readonly storedHooks = new Map<Topic, (rec: LogRecord, partition: number, durability?: 'none' | 'written' | 'synced') => void>();
  private seq = 0;
  private closed = false;

  constructor(private readonly options: ResolvedEmbeddedOptions) {
    this.readBatchRecords = options.readBatchRecords;
  }

  async open(): Promise<void> {
    const dir = this.options.dir;
    if (dir === null) return;
    for (const name of await listDir(join(dir, 'topics'))) {
      if ((await readJson(join(topicDir(dir, name), 'meta.json'))) === undefined) continue;
      this.topicMap.set(name, await Topic.open(name, this.options));
    }
    for (const file of await listDir(join(dir, 'groups'))) {
      if (!file.endsWith('.json')) continue;
      const saved = (await readJson(join(dir, 'groups', file))) as GroupFile | undefined;
      if (saved?.version !== 1) continue;
      const group = this.newGroup(saved.name, saved.mode, saved.settings);
      for (const p of saved.positions) group.saved.set(partKey(p.topic, p.partition), { committed: p.committed, acked: p.acked });
      for (const t of this.topicMap.values()) await group.addTopic(t, false);
    }
  }

  private newGroup(name: string | undefined, mode: GroupMode, settings: GroupSettings): DeliveryGroup {
    const id = name === undefined ? `s${++this.seq}` : `g:${name}`;
    const group = new DeliveryGroup(id, name, mode, settings, this);
    this.byId.set(id, group);
    if (name !== undefined) this.durable.set(name, group);
    return group;
  }

  private checkOpen(): void {
    if (this.closed) throw new WirelabError(ErrorCodes.CLOSED, 'engine closed');
  }

  // ---- topics ----

  async ensureTopic(name: string, config?: TopicConfig): Promise<TopicInfo> {
    return (await this.getTopic(name, config)).info();
  }

  private async getTopic(name: string, config?: TopicConfig): Promise<Topic> {
    this.checkOpen();
    const have = this.topicMap.get(name);
    if (have) return have;
    checkTopic(name);
    let opening = this.opening.get(name);
    if (!opening) {
      opening = Topic.open(name, this.options, config).then(async (topic) => {
        this.topicMap.set(name, topic);
        for (const g of this.byId.values()) await g.addTopic(topic, true);
        return topic;
      });
      this.opening.set(name, opening);
      opening.then(
        () => this.opening.delete(name),
        () => this.opening.delete(name),
      );
    }
    return opening;
  }

  async topics(): Promise<TopicInfo[]> {
    return [...this.topicMap.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((t) => t.info());
  }

  async topic(name: string): Promise<TopicInfo | undefined> {
    return this.topicMap.get(name)?.info();
  }

  async deleteTopic(name: string): Promise<boolean> {
    this.checkOpen();
    const topic = this.topicMap.get(name);
    if (!topic) return false;
    this.topicMap.delete(name);
    this.storedHooks.delete(topic);
    for (const g of this.byId.values()) g.removeTopic(name);
    await topic.close();
    if (this.options.dir !== null) await rm(topicDir(this.options.dir, name), { recursive: true, force: true });
    return true;
  }

  // ---- producing and reading ----

  append(request: AppendRequest): Promise<AppendResult> {
    if (typeof request !== 'object' || request === null || !Buffer.isBuffer(request.payload)) {
      return Promise.reject(new PubsubError(ErrorCodes.PUBSUB_INVALID, 'append: payload must be a Buffer'));
    }
    if (request.ttlMs !== undefined && (!Number.isInteger(request.ttlMs) || request.ttlMs <= 0)) {
      return Promise.reject(new PubsubError(ErrorCodes.PUBSUB_INVALID, 'append: ttlMs must be a positive integer'));
    }
    // A known topic appends without an await (the hot path); a new one is opened first.
    const topic = this.topicMap.get(request.topic);
    if (topic !== undefined && !this.closed) return this.appendTo(topic, request);
    return this.getTopic(request.topic).then((t) => this.appendTo(t, request));
  }

  private appendTo(topic: Topic, request: AppendRequest): Promise<AppendResult> {
    let stored = this.storedHooks.get(topic);
    if (stored === undefined) {
      stored = (rec, partition, durability) => this.onStored(topic, rec, partition, durability);
      this.storedHooks.set(topic, stored);
    }
    let appended: { result: Promise<AppendResult>; duplicate: boolean };
    try {
      appended = topic.append(request, stored);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (!appended.duplicate) return appended.result;
    return appended.result.then((r) => {
      this.lineage(() => ({ step: 'duplicate', topic: topic.name, msgId: request.msgId!, offset: r.offset, t: Date.now() }));
      return r;
    });
  }

  /** A record is in the log (as far as its acks asked): lineage, then the groups reading that partition pump. */
  private onStored(topic: Topic, rec: LogRecord, partition: number, durability?: 'none' | 'written' | 'synced'): void {
    if (this.listeners.size > 0) {
      const step: LineageStep = { step: 'persisted', topic: topic.name, partition, offset: rec.offset, durability: durability ?? 'written', t: Date.now() };
      for (const l of this.listeners) {
        try {
          l(step);
        } catch {
          // A listener's failure is its own; the engine keeps delivering.
        }
      }
    }
    if (this.byId.size === 0) return;
    const key = partKey(topic.name, partition); // once per append, not once per group
    for (const g of this.byId.values()) if (g.parts.has(key)) g.pump();
  }

  async read(topic: string, partition: number, offset: number, max: number): Promise<LogRecord[]> {
    const t = this.topicMap.get(topic);
    if (!t) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no topic ${topic}`);
    const log = t.logs[partition];
    if (!log) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `topic ${topic} has no partition ${partition}`);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(max) || max < 0) throw new PubsubError(ErrorCodes.PUBSUB_INVALID, 'read: offset and max must be integers >= 0');
    if (max === 0 || offset >= log.nextOffset) return [];
    return log.read(offset, Math.min(max, this.options.maxReadRecords));
  }

  async offsetForTime(topic: string, partition: number, time: number): Promise<number> {
    const log = this.topicMap.get(topic)?.logs[partition];
    if (!log) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no partition ${topic}/${partition}`);
    return log.offsetForTime(time);
  }

  // ---- consuming ----

  async consume(spec: ConsumerSpec, deliver: (d: Delivery) => void): Promise<EngineConsumer> {
    this.checkOpen();
    const { settings, maxAckPending } = checkConsumerSpec(spec);
    if (typeof deliver !== 'function') throw new PubsubError(ErrorCodes.PUBSUB_INVALID, 'consume: deliver must be a function');
    let group: DeliveryGroup;
    const name = spec.group?.name;
    if (name === undefined) {
      group = this.newGroup(undefined, 'fanout', settings);
    } else {
      const have = this.durable.get(name);
      if (have && (have.mode !== spec.group!.mode || (have.members.length > 0 && have.settings.pattern !== settings.pattern))) {
        throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `group ${name} is a ${have.mode} group on ${have.settings.pattern}`);
      }
      group = have ?? this.newGroup(name, spec.group!.mode, settings);
      // A group nobody is in takes the settings of the member that brings it back.
      if (have && have.members.length === 0) have.retarget(settings);
    }
    for (const t of this.topicMap.values()) await group.addTopic(t, false);
    const member: Member = { id: `${name ?? 'sub'}#${++this.seq}`, deliver, maxAckPending, paused: false, closed: false, pending: 0 };
    group.addMember(member);
    if (group.durable) this.positionsChanged(group);
    return this.consumerFor(group, member);
  }

  private consumerFor(group: DeliveryGroup, member: Member): EngineConsumer {
    const find = (deliveryId: string) => {
      const f = typeof deliveryId === 'string' ? deliveryId.split('/') : [];
      if (f.length !== 5 || f[0] !== group.id) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `unknown delivery id for ${member.id}`);
      const part = group.parts.get(partKey(f[1]!, Number(f[2])));
      return part ? { part, offset: Number(f[3]) } : undefined;
    };
    return {
      id: member.id,
      ack: (id) => {
        const d = find(id);
        if (d) group.ack(d.part, d.offset, member.id);
      },
      nak: (id, delayMs = 0) => {
        const d = find(id);
        if (d) group.nak(d.part, d.offset, member.id, delayMs);
      },
      inProgress: (id) => {
        const d = find(id);
        if (d) group.inProgress(d.part, d.offset, member.id);
      },
      term: (id, reason = 'term') => {
        const d = find(id);
        if (d) group.term(d.part, d.offset, reason);
      },
      pause: () => {
        member.paused = true;
      },
      resume: () => {
        member.paused = false;
        group.pump();
      },
      close: async () => {
        if (member.closed) return;
        group.removeMember(member);
        if (!group.durable) {
          group.stop();
          this.byId.delete(group.id);
        }
      },
    };
  }

  async groups(): Promise<GroupInfo[]> {
    return [...this.durable.values()].sort((a, b) => (a.name! < b.name! ? -1 : 1)).map((g) => groupInfo(g));
  }

  // ---- GroupHost ----

  lineage(build: () => LineageStep): void {
    if (this.listeners.size === 0) return;
    const step = build();
    for (const l of this.listeners) {
      try {
        l(step);
      } catch {
        // A listener's failure is its own; the engine keeps delivering.
      }
    }
  }

  async deadLetter(topic: string, partition: number, record: LogRecord, reason: string, deliveries: number, to: string): Promise<void> {
    const headers = {
      ...record.headers,
      'wl-dlq-reason': reason,
      'wl-dlq-topic': topic,
      'wl-dlq-partition': String(partition),
      'wl-dlq-offset': String(record.offset),
      'wl-dlq-deliveries': String(deliveries),
    };
    const req: AppendRequest = { topic: to, payload: record.payload, headers, acks: 1 };
    if (record.key !== undefined) req.key = record.key;
    await this.append(req);
  }

  /** Saves a durable group's positions: one write at a time, the latest state written after the one running. */
  positionsChanged(group: DeliveryGroup): void {
    if (this.options.dir === null || group.name === undefined) return;
    const s = this.saves.get(group);
    if (s) {
      s.dirty = true;
      return;
    }
    const entry = { running: Promise.resolve(), dirty: false };
    this.saves.set(group, entry);
    entry.running = (async () => {
      do {
        entry.dirty = false;
        await new Promise<void>((r) => setImmediate(r));
        const file: GroupFile = { version: 1, name: group.name!, mode: group.mode === 'partitioned' ? 'partitioned' : 'queue', settings: group.settings, positions: groupPositions(group) };
        try {
          await writeJsonAtomic(join(this.options.dir!, 'groups', `${group.name}.json`), file, this.options.fsync !== 'never');
        } catch {
          // A failed save leaves the previous file: a restart redelivers more (at-least-once), never loses a message.
        }
      } while (entry.dirty);
      this.saves.delete(group);
    })();
  }

  onLineage(listener: (step: LineageStep) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * SIMULATED power loss (labs, tests): every partition log is cut to its last fsync'd length (PartitionLog's LazyFS
   * model), then the engine is closed. Reopening the folder shows what a machine that lost power would hold.
   */
  async simulatePowerLoss(): Promise<{ lostRecords: number; lostBytes: number }> {
    this.checkOpen();
    const lost = { lostRecords: 0, lostBytes: 0 };
    for (const topic of this.topicMap.values()) {
      for (const log of topic.logs) {
        const r = await log.simulatePowerLoss();
        lost.lostRecords += r.lostRecords;
        lost.lostBytes += r.lostBytes;
      }
    }
    await this.close(); // the logs are closed already: their close() returns at once
    return lost;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.opening.values()]);
    for (const g of this.byId.values()) g.stop();
    while (this.saves.size) await Promise.all([...this.saves.values()].map((s) => s.running));
    await Promise.all([...this.topicMap.values()].map((t) => t.close()));
    this.byId.clear();
    this.durable.clear();
    this.listeners.clear();
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

