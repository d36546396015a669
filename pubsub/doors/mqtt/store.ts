/**
 * What the MQTT door keeps beyond one connection, shared by every listener on one broker (TCP, TLS, WebSocket):
 * persistent sessions and retained messages. Both are stored in the broker's own engine, in two `$` topics, so they
 * live wherever the messages live (the embedded log or JetStream) and survive kill -9 as acked messages do:
 *
 * - `$mqtt.sessions`: one record per change, keyed by client id, a JSON body (subscriptions, expiry, generation);
 *   an empty body deletes the session. Read back in full when the door starts.
 * - `$mqtt.retained`: one record per retained publish, keyed by subject, the message as published (an empty payload
 *   clears it). Read back in full when the door starts.
 *
 * Each write asks the engine for acks 'all' (fsync'd) and falls back to 1 when the log's fsync policy is 'never'.
 * Both topics only grow (the engine has no compaction yet): a later issue.
 */
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import type { Engine, Headers } from '../../engines/types.ts';
import type { ResolvedLimits } from './options.ts';

export const SESSIONS_TOPIC = '$mqtt.sessions';
export const RETAINED_TOPIC = '$mqtt.retained';

export interface StoredSubscription {
  /** The MQTT filter as subscribed (`a/+/#`, `$share/g/a/#`). */
  filter: string;
  qos: 0 | 1 | 2;
  /** MQTT 5 options. */
  nl?: boolean;
  rap?: boolean;
  rh?: number;
  subscriptionId?: number;
  /** Unique within the session: the durable group is `mqtt.<client>.<generation>.<seq>` (a new subscribe, a new queue). */
  seq: number;
  /**
   * When it was subscribed (ms since the epoch): a persistent subscription's group starts a topic it has no position
   * in from this time, so a topic first published to while the client was away is not skipped.
   */
  since?: number;
}

export interface StoredSession {
  clientId: string;
  /** Changes at every clean start: durable group names carry it, so a clean start never resumes an old group. */
  generation: number;
  expirySeconds: number;
  protocolVersion: number;
  subscriptions: StoredSubscription[];
  nextSeq: number;
  /** When the client last disconnected (ms since the epoch); absent while it is connected. */
  disconnectedAt?: number;
}

export interface RetainedMessage {
  subject: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  headers: Headers;
  expiresAt?: number;
  timestamp: number;
}

const READ_BATCH = 1000;

async function readAll(engine: Engine, topic: string, each: (key: string, payload: Buffer, r: { headers: Headers; expiresAt?: number; timestamp: number }) => void): Promise<void> {
  await engine.ensureTopic(topic, { partitions: 1 });
  const info = await engine.topic(topic);
  const p = info?.partitionInfo[0];
  if (!p) return;
  for (let offset = p.firstOffset; offset < p.nextOffset; ) {
    const records = await engine.read(topic, 0, offset, READ_BATCH);
    if (records.length === 0) break;
    for (const r of records) if (r.key !== undefined) each(r.key, r.payload, r);
    offset = records[records.length - 1]!.offset + 1;
  }
}

export class DoorStore {
  readonly sessions = new Map<string, StoredSession>();
  readonly retained = new Map<string, RetainedMessage>();
  readonly #engine: Engine;
  readonly #limits: ResolvedLimits;
  #acks: 1 | 'all' = 'all';

  constructor(engine: Engine, limits: ResolvedLimits) {
    this.#engine = engine;
    this.#limits = limits;
  }

  async load(now = Date.now()): Promise<void> {
    await readAll(this.#engine, SESSIONS_TOPIC, (key, payload) => {
      if (payload.length === 0) this.sessions.delete(key);
      else {
        try {
          this.sessions.set(key, JSON.parse(payload.toString('utf8')) as StoredSession);
        } catch {
          // A record this door did not write: ignored.
        }
      }
    });
    for (const [id, s] of this.sessions) if (this.expired(s, now)) await this.deleteSession(id);
    await readAll(this.#engine, RETAINED_TOPIC, (key, payload, r) => {
      if (payload.length === 0) this.retained.delete(key);
      else {
        const { 'mqtt-qos': qos, ...headers } = r.headers;
        this.retained.set(key, { subject: key, payload, qos: Number(qos ?? 0) as 0 | 1 | 2, headers, expiresAt: r.expiresAt, timestamp: r.timestamp });
      }
    });
  }

  expired(s: StoredSession, now = Date.now()): boolean {
    return s.disconnectedAt !== undefined && s.expirySeconds !== 0xffffffff && now >= s.disconnectedAt + s.expirySeconds * 1000;
  }

  async #append(topic: string, key: string, payload: Buffer, headers: Headers = {}, ttlMs?: number): Promise<void> {
    const request = { topic, key, payload, headers, partition: 0, ...(ttlMs !== undefined ? { ttlMs } : {}) };
    try {
      await this.#engine.append({ ...request, acks: this.#acks });
    } catch (err) {
      if (!(err instanceof PubsubError) || err.code !== ErrorCodes.PUBSUB_DURABILITY || this.#acks === 1) throw err;
      this.#acks = 1;
      await this.#engine.append({ ...request, acks: 1 });
    }
  }

  /** Refuses a new persistent session past maxSessions (PubsubError LIMIT, limit 'maxSessions'). */
  checkRoom(clientId: string): void {
    if (!this.sessions.has(clientId) && this.sessions.size >= this.#limits.maxSessions) {
      throw new PubsubError(ErrorCodes.PUBSUB_LIMIT, `maxSessions=${this.#limits.maxSessions} persistent sessions reached`, { limit: 'maxSessions' });
    }
  }

  async saveSession(s: StoredSession): Promise<void> {
    this.sessions.set(s.clientId, s);
    await this.#append(SESSIONS_TOPIC, s.clientId, Buffer.from(JSON.stringify(s)));
  }

  async deleteSession(clientId: string): Promise<void> {
    if (!this.sessions.delete(clientId)) return;
    await this.#append(SESSIONS_TOPIC, clientId, Buffer.alloc(0));
  }

  /** Stores (or with an empty payload clears) the retained message of `m.subject`. */
  async setRetained(m: RetainedMessage, ttlMs?: number): Promise<void> {
    if (m.payload.length === 0) {
      if (!this.retained.delete(m.subject)) return;
      await this.#append(RETAINED_TOPIC, m.subject, m.payload);
      return;
    }
    if (!this.retained.has(m.subject) && this.retained.size >= this.#limits.maxRetained) {
      throw new PubsubError(ErrorCodes.PUBSUB_LIMIT, `maxRetained=${this.#limits.maxRetained} retained topics reached`, { limit: 'maxRetained' });
    }
    this.retained.set(m.subject, m);
    await this.#append(RETAINED_TOPIC, m.subject, m.payload, { ...m.headers, 'mqtt-qos': String(m.qos) }, ttlMs);
  }
}
