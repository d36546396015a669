/**
 * One MQTT door per broker: every listener on the same broker (mqtt, mqtts, MQTT over WebSocket) shares its live
 * connections by client id (a second CONNECT with an id takes the session over), its stored sessions, retained
 * messages, delayed wills and session-expiry timers.
 */
import type { Broker, Session } from '../../broker/types.ts';
import type { ResolvedLimits } from './options.ts';
import { SharedEncodings } from './shared-encode.ts';
import { DoorStore } from './store.ts';

/** A connection as the door sees it (connection.ts implements it). */
export interface LiveConnection {
  readonly clientId: string;
  /** Another CONNECT with this client id arrived: end this one (DISCONNECT 0x8E on 5). */
  takeOver(): Promise<void>;
}

export interface Will {
  subject: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  headers: Record<string, string>;
  ttlMs?: number;
  delayMs: number;
}

/** Per client id, what outlives one connection but not the process: QoS 2 publishes awaiting their PUBREL. */
export interface ClientRuntime {
  /** Packet id -> the reason code of the broker's answer (resolved once the message is stored). */
  qos2In: Map<number, Promise<number>>;
}

export class MqttDoor {
  readonly broker: Broker;
  readonly limits: ResolvedLimits;
  readonly store: DoorStore;
  readonly live = new Map<string, LiveConnection>();
  readonly runtime = new Map<string, ClientRuntime>();
  readonly #wills = new Map<string, { timer: NodeJS.Timeout; fire: () => Promise<void> }>();
  readonly #expiry = new Map<string, NodeJS.Timeout>();
  /** Counters for tests and `wirelab up`. */
  readonly stats = { connections: 0, refused: 0, badInput: 0, willsPublished: 0, retainedDelivered: 0, sessionsResumed: 0, sessionsExpired: 0 };
  refs = 0;
  /** QoS 0 PUBLISH packets encoded once for every subscriber that gets the same bytes (shared-encode.ts). */
  readonly encodings = new SharedEncodings();

  constructor(broker: Broker, limits: ResolvedLimits) {
    this.broker = broker;
    this.limits = limits;
    this.store = new DoorStore(broker.engine, limits);
  }

  runtimeFor(clientId: string): ClientRuntime {
    let r = this.runtime.get(clientId);
    if (!r) this.runtime.set(clientId, (r = { qos2In: new Map() }));
    return r;
  }

  /** Publishes `will` through `session` after its delay (unless the client comes back first), then closes the session. */
  scheduleWill(clientId: string, will: Will, session: Session, publish: () => Promise<void>): void {
    this.cancelWill(clientId);
    const fire = async (): Promise<void> => {
      this.#wills.delete(clientId);
      try {
        await publish();
        this.stats.willsPublished++;
      } catch {
        // Refused by the broker (ACL, limits): the connection's trace already said why.
      }
      await session.close('will published').catch(() => undefined);
    };
    if (will.delayMs <= 0) {
      void fire();
      return;
    }
    const timer = setTimeout(() => void fire(), will.delayMs);
    timer.unref();
    this.#wills.set(clientId, { timer, fire: async () => session.close('will cancelled').then(() => undefined, () => undefined) });
  }

  /** The client came back within its will delay: the will is not published. */
  cancelWill(clientId: string): void {
    const w = this.#wills.get(clientId);
    if (!w) return;
    clearTimeout(w.timer);
    this.#wills.delete(clientId);
    void w.fire();
  }

  scheduleExpiry(clientId: string, seconds: number): void {
    this.cancelExpiry(clientId);
    const timer = setTimeout(() => {
      this.#expiry.delete(clientId);
      if (this.live.has(clientId)) return;
      this.stats.sessionsExpired++;
      this.runtime.delete(clientId);
      void this.store.deleteSession(clientId).catch(() => undefined);
    }, Math.min(seconds * 1000, 2 ** 31 - 1));
    timer.unref();
    this.#expiry.set(clientId, timer);
  }

  cancelExpiry(clientId: string): void {
    const t = this.#expiry.get(clientId);
    if (t) clearTimeout(t);
    this.#expiry.delete(clientId);
  }

  /** Timers of sessions stored before a restart start again from their disconnect time. */
  startExpiryTimers(now = Date.now()): void {
    for (const s of this.store.sessions.values()) {
      if (s.disconnectedAt === undefined) s.disconnectedAt = now;
      this.scheduleExpiry(s.clientId, Math.max(0, (s.disconnectedAt + s.expirySeconds * 1000 - now) / 1000));
    }
  }

  async close(): Promise<void> {
    for (const [id, w] of [...this.#wills]) {
      clearTimeout(w.timer);
      this.#wills.delete(id);
      await w.fire();
    }
    for (const t of this.#expiry.values()) clearTimeout(t);
    this.#expiry.clear();
  }
}

const doors = new WeakMap<Broker, Promise<MqttDoor>>();

/** The door of `broker`, made (and its sessions and retained messages loaded) by the first listener. */
export async function doorFor(broker: Broker, limits: ResolvedLimits): Promise<MqttDoor> {
  let p = doors.get(broker);
  if (!p) {
    p = (async () => {
      const door = new MqttDoor(broker, limits);
      await door.store.load();
      door.startExpiryTimers();
      return door;
    })();
    doors.set(broker, p);
    p.catch(() => doors.delete(broker));
  }
  const door = await p;
  door.refs++;
  return door;
}

/** A listener stopped; the last one closes the door (wills pending are published, timers stop). */
export async function releaseDoor(door: MqttDoor): Promise<void> {
  if (--door.refs > 0) return;
  doors.delete(door.broker);
  await door.close();
}
