/**
 * SUBSCRIBE / UNSUBSCRIBE and messages to the client. Each MQTT subscription is one or two broker subscriptions
 * (`a/#` is `a` and `a.>`): an ephemeral fan-out subscriber for a clean session, a durable queue group of one member
 * (`mqtt.<client>.<generation>.<seq>.<n>`) for a persistent session, so what arrives while the client is away waits in
 * the log at the group's committed offset; a `$share/<g>/<filter>` is a queue group shared by its members.
 * Outgoing QoS = min(subscription QoS, message QoS). The client's Receive Maximum bounds the QoS 1 / 2 messages in
 * flight: past it Deliver returns false and the broker buffers; PUBACK, or PUBREC for QoS 2, acks the broker delivery.
 */
import type { IPubackPacket, IPubcompPacket, IPublishPacket, IPubrecPacket, ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet';
import { PubsubError } from '../../../core/errors.ts';
import type { Message, Subscription } from '../../broker/types.ts';
import { matches } from '../../subjects.ts';
import type { MqttConnection } from './connection.ts';
import { CLIENT_HEADER, CONTENT_TYPE_HEADER, CORRELATION_HEADER, FORMAT_HEADER, QOS_HEADER, RESPONSE_TOPIC_HEADER, RETAIN_HEADER } from './publish-in.ts';
import { encodePacket } from './framing.ts';
import { RC, reasonForError } from './reasons.ts';
import { SharedEncodings } from './shared-encode.ts';
import type { RetainedMessage, StoredSubscription } from './store.ts';
import { filterToPatterns, parseShared, groupToken, subjectToTopic } from './topics.ts';

interface ActiveSubscription {
  stored: StoredSubscription;
  handles: Subscription[];
}

interface Outgoing {
  subject: string;
  payload: Buffer;
  headers: Record<string, string>;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  expiresAt?: number;
  deliveryId?: string;
  subscriptionId?: number;
}

interface Inflight {
  deliveryId?: string;
  stage: 'puback' | 'pubrec' | 'pubcomp';
}

const INTERNAL = new Set([QOS_HEADER, RETAIN_HEADER, CLIENT_HEADER, RESPONSE_TOPIC_HEADER, CORRELATION_HEADER, FORMAT_HEADER, CONTENT_TYPE_HEADER]);

export class Deliveries {
  readonly #c: MqttConnection;
  readonly #subs = new Map<string, ActiveSubscription>();
  readonly #inflight = new Map<number, Inflight>();
  /** Messages the broker handed over past the client's Receive Maximum (bounded by maxQueuedPerConnection). */
  readonly #queue: Outgoing[] = [];
  readonly #aliases = new Map<string, number>();
  #nextId = 1;
  /** Counters for tests. */
  readonly stats = { sent: 0, queued: 0, nakd: 0 };

  constructor(c: MqttConnection) {
    this.#c = c;
  }

  get #windowFull(): boolean {
    return this.#inflight.size >= this.#c.clientReceiveMaximum;
  }

  #packetId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.#nextId;
      this.#nextId = (this.#nextId % 65535) + 1;
      if (!this.#inflight.has(id)) return id;
    }
    throw new PubsubError('WL_ERR_PUBSUB_LIMIT', 'no free packet id', { limit: 'receiveMaximum' });
  }

  async onSubscribe(p: ISubscribePacket): Promise<void> {
    const c = this.#c;
    const granted: number[] = [];
    const retainedToSend: [StoredSubscription, string[]][] = [];
    for (const s of p.subscriptions) {
      const stored: StoredSubscription = {
        filter: s.topic,
        qos: s.qos,
        ...(s.nl ? { nl: true } : {}),
        ...(s.rap ? { rap: true } : {}),
        ...(s.rh ? { rh: s.rh } : {}),
        seq: c.stored ? c.stored.nextSeq++ : 0,
        since: Date.now(),
      };
      if (p.properties?.subscriptionIdentifier !== undefined) stored.subscriptionId = p.properties.subscriptionIdentifier as number;
      const existed = this.#subs.has(s.topic);
      const rc = await this.#subscribe(stored);
      granted.push(c.version === 4 && rc >= 0x80 ? 0x80 : rc);
      if (rc < 0x80 && !parseShared(s.topic) && (stored.rh ?? 0) !== 2 && !((stored.rh ?? 0) === 1 && existed)) {
        retainedToSend.push([stored, filterToPatterns(s.topic)]);
      }
    }
    if (c.stored) await c.door.store.saveSession({ ...c.stored, subscriptions: [...this.#subs.values()].map((a) => a.stored) }).catch(() => undefined);
    if (c.stored) c.stored.subscriptions = [...this.#subs.values()].map((a) => a.stored);
    c.send({ cmd: 'suback', messageId: p.messageId, granted });
    for (const [stored, patterns] of retainedToSend) this.#sendRetained(stored, patterns);
  }

  /** A resumed persistent session: its subscriptions join their groups again (queued messages follow). */
  async resume(subscriptions: StoredSubscription[]): Promise<void> {
    for (const s of subscriptions) await this.#subscribe(s);
  }

  /** Subscribes one filter (replacing a subscription to the same filter); the SUBACK reason code. */
  async #subscribe(stored: StoredSubscription): Promise<number> {
    const c = this.#c;
    let patterns: string[];
    const shared = parseShared(stored.filter);
    try {
      patterns = filterToPatterns(shared ? shared.filter : stored.filter);
    } catch (err) {
      c.trace('*', 'subscribe-refused', () => `${stored.filter}: ${err instanceof Error ? err.message : String(err)}`);
      return RC.TOPIC_FILTER_INVALID;
    }
    const old = this.#subs.get(stored.filter);
    if (old) {
      this.#subs.delete(stored.filter);
      await Promise.all(old.handles.map((h) => h.close().catch(() => undefined)));
      if (c.stored) {
        stored.seq = old.stored.seq;
        stored.since = old.stored.since;
      }
    }
    const handles: Subscription[] = [];
    try {
      for (const [n, pattern] of patterns.entries()) {
        const group = shared
          ? { name: `mqtt.share.${groupToken(shared.group)}.${groupToken(stored.filter)}.${n}`, mode: 'queue' as const }
          : c.stored
            ? { name: `mqtt.${groupToken(c.clientId)}.${c.stored.generation}.${stored.seq}.${n}`, mode: 'queue' as const }
            : undefined;
        const ack = group || stored.qos > 0 ? ('manual' as const) : ('none' as const);
        const start = c.stored && !shared && stored.since !== undefined ? { kind: 'time' as const, time: stored.since } : { kind: 'new' as const };
        handles.push(
          await c.session!.subscribe(
            { pattern, ...(group ? { group } : {}), ack, ackWaitMs: c.door.limits.redeliverAfterMs, start },
            (m) => this.#onMessage(m, stored),
          ),
        );
      }
    } catch (err) {
      await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
      const code = err instanceof PubsubError ? err.code : undefined;
      c.trace('*', 'subscribe-refused', () => ({ summary: `${stored.filter}: ${code ?? 'error'} ${err instanceof Error ? err.message : ''}`, meta: { code } }));
      return reasonForError(code, true);
    }
    this.#subs.set(stored.filter, { stored, handles });
    return stored.qos;
  }

  async onUnsubscribe(p: IUnsubscribePacket): Promise<void> {
    const c = this.#c;
    const codes: number[] = [];
    for (const filter of p.unsubscriptions) {
      const a = this.#subs.get(filter);
      this.#subs.delete(filter);
      if (a) await Promise.all(a.handles.map((h) => h.close().catch(() => undefined)));
      codes.push(a ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED);
    }
    if (c.stored) {
      c.stored.subscriptions = [...this.#subs.values()].map((a) => a.stored);
      await c.door.store.saveSession(c.stored).catch(() => undefined);
    }
    c.send({ cmd: 'unsuback', messageId: p.messageId, ...(c.version === 5 ? { reasonCode: codes } : {}) } as never);
  }

  #sendRetained(stored: StoredSubscription, patterns: string[]): void {
    const now = Date.now();
    for (const m of this.#c.door.store.retained.values() as IterableIterator<RetainedMessage>) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) continue;
      if (!patterns.some((p) => matches(p, m.subject))) continue;
      this.#c.door.stats.retainedDelivered++;
      this.#offer({
        subject: m.subject,
        payload: m.payload,
        headers: m.headers,
        qos: Math.min(stored.qos, m.qos) as 0 | 1 | 2,
        retain: true,
        dup: false,
        ...(m.expiresAt !== undefined ? { expiresAt: m.expiresAt } : {}),
        ...(stored.subscriptionId !== undefined ? { subscriptionId: stored.subscriptionId } : {}),
      });
    }
  }

  /** The broker's Deliver for one subscription. */
  #onMessage(m: Message, stored: StoredSubscription): boolean {
    const c = this.#c;
    if (c.state !== 'connected') {
      if (m.deliveryId) c.session?.nak(m.deliveryId);
      return false;
    }
    if (stored.nl && m.headers[CLIENT_HEADER] === c.clientId) {
      if (m.deliveryId) c.session!.ack(m.deliveryId);
      return true;
    }
    const q = m.headers[QOS_HEADER];
    // Messages from the other doors have no MQTT QoS: they go at the subscription's.
    const msgQos = q === '0' || q === '1' || q === '2' ? Number(q) : 2;
    const o: Outgoing = {
      subject: m.topic,
      payload: m.payload,
      headers: m.headers,
      qos: Math.min(stored.qos, msgQos) as 0 | 1 | 2,
      retain: stored.rap === true && m.headers[RETAIN_HEADER] === '1',
      dup: m.attempt > 1,
    };
    if (m.expiresAt !== undefined) o.expiresAt = m.expiresAt;
    if (m.deliveryId) o.deliveryId = m.deliveryId;
    if (stored.subscriptionId !== undefined) o.subscriptionId = stored.subscriptionId;
    return this.#offer(o);
  }

  /** Sends now, or queues past the window; false when the broker should hold further messages. */
  #offer(o: Outgoing): boolean {
    const c = this.#c;
    if (o.qos > 0 && (this.#windowFull || this.#queue.length > 0)) {
      if (this.#queue.length < c.door.limits.maxQueuedPerConnection) {
        this.#queue.push(o);
        this.stats.queued++;
      } else if (o.deliveryId) {
        // Past the local queue too: back to the broker, which redelivers it later.
        this.stats.nakd++;
        c.session!.nak(o.deliveryId, 1000);
      }
      return false;
    }
    this.#send(o);
    return !this.#windowFull && !c.congested;
  }

  #send(o: Outgoing): void {
    const c = this.#c;
    const now = Date.now();
    if (o.expiresAt !== undefined && o.expiresAt <= now) {
      if (o.deliveryId) c.session!.ack(o.deliveryId);
      return;
    }
    this.stats.sent++;
    // Same bytes as every other subscriber of this message: encoded once (shared-encode.ts).
    if (o.qos === 0 && o.expiresAt === undefined && o.subscriptionId === undefined && (c.version === 4 || c.clientTopicAliasMaximum === 0)) {
      const encodings = c.door.encodings;
      const variant = SharedEncodings.variant(c.version, o.retain, o.dup);
      let bytes = encodings.find(o.payload, o.subject, o.headers, variant);
      if (bytes === undefined) encodings.keep(o.payload, o.subject, o.headers, variant, (bytes = encodePacket(this.#packet(o, now, false), c.version)));
      c.sendEncoded(bytes, c.ctx.tracer.enabled ? () => this.#packet(o, now, false) : undefined);
      if (o.deliveryId) c.session!.ack(o.deliveryId);
      return;
    }
    const packet = this.#packet(o, now, true);
    if (o.qos > 0) {
      packet.messageId = this.#packetId();
      this.#inflight.set(packet.messageId, { ...(o.deliveryId ? { deliveryId: o.deliveryId } : {}), stage: o.qos === 1 ? 'puback' : 'pubrec' });
    }
    c.send(packet);
    if (o.qos === 0 && o.deliveryId) c.session!.ack(o.deliveryId);
  }

  /** The PUBLISH for `o` (no packet id); `aliases`: use and assign this connection's topic aliases. */
  #packet(o: Outgoing, now: number, aliases: boolean): IPublishPacket {
    const c = this.#c;
    let topic = subjectToTopic(o.subject);
    if (c.version !== 5) return { cmd: 'publish', topic, payload: o.payload, qos: o.qos, retain: o.retain, dup: o.dup };
    const properties: NonNullable<IPublishPacket['properties']> = {};
    const user: Record<string, string> = {};
    let users = 0;
    for (const k in o.headers) {
      if (INTERNAL.has(k)) continue;
      user[k] = o.headers[k]!;
      users++;
    }
    if (users > 0) properties.userProperties = user;
    if (o.headers[CONTENT_TYPE_HEADER] !== undefined) properties.contentType = o.headers[CONTENT_TYPE_HEADER];
    if (o.headers[RESPONSE_TOPIC_HEADER] !== undefined) properties.responseTopic = o.headers[RESPONSE_TOPIC_HEADER];
    if (o.headers[CORRELATION_HEADER] !== undefined) properties.correlationData = Buffer.from(o.headers[CORRELATION_HEADER], 'base64');
    if (o.headers[FORMAT_HEADER] === '1') properties.payloadFormatIndicator = true;
    if (o.expiresAt !== undefined) properties.messageExpiryInterval = Math.max(1, Math.ceil((o.expiresAt - now) / 1000));
    if (o.subscriptionId !== undefined) properties.subscriptionIdentifier = o.subscriptionId;
    if (aliases && c.clientTopicAliasMaximum > 0) {
      const alias = this.#aliases.get(topic);
      if (alias !== undefined) {
        properties.topicAlias = alias;
        topic = '';
      } else if (this.#aliases.size < c.clientTopicAliasMaximum) {
        properties.topicAlias = this.#aliases.size + 1;
        this.#aliases.set(topic, properties.topicAlias);
      }
    }
    return { cmd: 'publish', topic, payload: o.payload, qos: o.qos, retain: o.retain, dup: o.dup, properties };
  }

  onAck(p: IPubackPacket | IPubrecPacket | IPubcompPacket): void {
    const c = this.#c;
    const id = p.messageId ?? 0;
    const f = this.#inflight.get(id);
    if (!f || f.stage !== p.cmd) {
      c.trace('*', 'unknown-ack', () => `${p.cmd.toUpperCase()} id=${id} for nothing in flight`);
      if (p.cmd === 'pubrec') c.send({ cmd: 'pubrel', messageId: id, ...(c.version === 5 ? { reasonCode: RC.PACKET_ID_NOT_FOUND } : {}) });
      return;
    }
    const refused = c.version === 5 && ((p as { reasonCode?: number }).reasonCode ?? 0) >= 0x80;
    if (p.cmd === 'pubrec' && !refused) {
      // The client has the message: the broker delivery is acked here; PUBREL / PUBCOMP finish the exchange.
      if (f.deliveryId) c.session!.ack(f.deliveryId);
      f.stage = 'pubcomp';
      c.trace('*', 'qos2-step', () => `2/4 PUBREC id=${id} (acked to the broker) -> 3/4 PUBREL`);
      c.send({ cmd: 'pubrel', messageId: id });
      return;
    }
    if (p.cmd === 'puback' && f.deliveryId) {
      if (refused) c.session!.term(f.deliveryId, `refused by the client: reason 0x${(p as { reasonCode?: number }).reasonCode!.toString(16)}`);
      else c.session!.ack(f.deliveryId);
    }
    if (p.cmd === 'pubcomp') c.trace('*', 'qos2-step', () => `4/4 PUBCOMP id=${id}: exchange complete`);
    this.#inflight.delete(id);
    this.resumeAll();
  }

  /** Room again (an ack, or the transport drained): queued messages first, then the broker's buffers. */
  resumeAll(): void {
    const c = this.#c;
    while (this.#queue.length > 0 && !this.#windowFull && !c.congested && c.state === 'connected') this.#send(this.#queue.shift()!);
    if (this.#queue.length > 0 || this.#windowFull || c.congested) return;
    for (const a of this.#subs.values()) for (const h of a.handles) h.resume();
  }

  /** The connection ended: broker subscriptions close (unacked deliveries go back to their groups). */
  async closeAll(): Promise<void> {
    const subs = [...this.#subs.values()];
    this.#subs.clear();
    this.#queue.length = 0;
    this.#inflight.clear();
    await Promise.all(subs.flatMap((a) => a.handles.map((h) => h.close().catch(() => undefined))));
  }
}
