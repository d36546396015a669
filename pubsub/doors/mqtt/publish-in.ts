/**
 * PUBLISH from the client. QoS 0: handed to the broker (acks 0). QoS 1: PUBACK once the broker's ack resolves.
 * QoS 2: the message is handed to the broker once, when the PUBLISH first arrives; PUBREC goes out when the broker's
 * ack resolves; a PUBLISH repeated with the same packet id before PUBREL (DUP) is answered with PUBREC again and
 * not stored twice; PUBREL -> PUBCOMP. The acks go out in the order the publishes came.
 */
import type { IPublishPacket, IPubrelPacket, UserProperties } from 'mqtt-packet';
import { PubsubError } from '../../../core/errors.ts';
import type { Headers } from '../../engines/types.ts';
import type { PublishInput, Session } from '../../broker/types.ts';
import type { MqttConnection } from './connection.ts';
import type { Will } from './door.ts';
import { RC, reasonForError } from './reasons.ts';
import { topicToSubject } from './topics.ts';

/** Headers the door sets itself (not copied from / to user properties). */
export const QOS_HEADER = 'mqtt-qos';
export const RETAIN_HEADER = 'mqtt-retain';
export const CLIENT_HEADER = 'mqtt-client';
export const RESPONSE_TOPIC_HEADER = 'mqtt-response-topic';
export const CORRELATION_HEADER = 'mqtt-correlation-data';
export const FORMAT_HEADER = 'mqtt-payload-format';
export const CONTENT_TYPE_HEADER = 'content-type';

interface MessageProperties {
  userProperties?: UserProperties;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  payloadFormatIndicator?: boolean;
}

/** MQTT 5 properties -> headers (a user property given several times keeps its last value). */
export function headersFromProperties(props: MessageProperties, qos: number, retain: boolean, clientId: string): Headers {
  const h: Headers = {};
  for (const [k, v] of Object.entries(props.userProperties ?? {})) h[k] = Array.isArray(v) ? String(v[v.length - 1] ?? '') : String(v);
  if (props.contentType !== undefined) h[CONTENT_TYPE_HEADER] = props.contentType;
  if (props.responseTopic !== undefined) h[RESPONSE_TOPIC_HEADER] = props.responseTopic;
  if (props.correlationData !== undefined) h[CORRELATION_HEADER] = props.correlationData.toString('base64');
  if (props.payloadFormatIndicator) h[FORMAT_HEADER] = '1';
  h[QOS_HEADER] = String(qos);
  if (retain) h[RETAIN_HEADER] = '1';
  h[CLIENT_HEADER] = clientId;
  return h;
}

/** An ack waiting for its turn: `rc` is undefined until the broker answered. */
interface Answer {
  rc: number | undefined;
  send: (rc: number) => void;
  closeOnRefusal: boolean;
}

export class Publishes {
  readonly #c: MqttConnection;
  /** Topic aliases the client set (MQTT 5). */
  readonly #aliases = new Map<number, string>();
  /** QoS 1 / 2 publishes not yet answered (PUBACK, or PUBREC then PUBREL): bounded by receiveMaximum. */
  #inflight = 0;
  /** Acks leave in the order the publishes came: answers waiting, oldest first (`rc` set once the broker answered). */
  readonly #answers: Answer[] = [];
  #answersHead = 0;

  constructor(c: MqttConnection) {
    this.#c = c;
  }

  onPublish(p: IPublishPacket): void {
    const c = this.#c;
    let topic = p.topic;
    const alias = p.properties?.topicAlias;
    if (c.version === 5 && alias !== undefined) {
      if (alias === 0 || alias > c.door.limits.maxTopicAliases) {
        return c.badInput('topic-alias', `topic alias ${alias} outside 1..${c.door.limits.maxTopicAliases}`, RC.TOPIC_ALIAS_INVALID);
      }
      if (topic) this.#aliases.set(alias, topic);
      else {
        const known = this.#aliases.get(alias);
        if (known === undefined) return c.badInput('topic-alias', `unknown topic alias ${alias}`, RC.PROTOCOL_ERROR);
        topic = known;
      }
    }
    if (topic.includes('+') || topic.includes('#')) return c.badInput('wildcard-topic', `wildcard in PUBLISH topic ${JSON.stringify(topic.slice(0, 80))}`, RC.TOPIC_NAME_INVALID);
    const qos = p.qos;
    const id = p.messageId ?? 0;
    if (qos > 0 && ++this.#inflight > c.door.limits.receiveMaximum) {
      return c.badInput('receive-maximum', `more than receiveMaximum=${c.door.limits.receiveMaximum} QoS 1/2 publishes unanswered`, RC.RECEIVE_MAXIMUM_EXCEEDED);
    }
    if (qos === 2) {
      const runtime = c.door.runtimeFor(c.clientId);
      const pending = runtime.qos2In.get(id);
      if (pending) {
        // The same packet id again before PUBREL (a retransmission with DUP): answered, not stored again.
        c.trace('*', 'qos2-duplicate', () => `PUBLISH id=${id} again before PUBREL: not stored twice`);
        this.#inflight--;
        this.#answer(pending, (rc) => c.send({ cmd: 'pubrec', messageId: id, ...(c.version === 5 && rc ? { reasonCode: rc } : {}) }), false);
        return;
      }
      const stored = this.#store(p, topic);
      runtime.qos2In.set(id, stored);
      this.#answer(stored, (rc) => {
        c.trace('*', 'qos2-step', () => `1/4 PUBLISH id=${id} stored by the broker -> 2/4 PUBREC`);
        if (rc >= 0x80) {
          // Refused: no PUBREL follows, the exchange ends here.
          runtime.qos2In.delete(id);
          this.#inflight--;
        }
        c.send({ cmd: 'pubrec', messageId: id, ...(c.version === 5 && rc ? { reasonCode: rc } : {}) });
      }, rc0x80(c.version));
      return;
    }
    const stored = this.#store(p, topic);
    if (qos === 1) {
      this.#answer(stored, (rc) => {
        this.#inflight--;
        c.send({ cmd: 'puback', messageId: id, ...(c.version === 5 && rc ? { reasonCode: rc } : {}) });
      }, rc0x80(c.version));
    } else {
      void stored;
    }
  }

  onPubrel(p: IPubrelPacket): void {
    const c = this.#c;
    const id = p.messageId ?? 0;
    const runtime = c.door.runtimeFor(c.clientId);
    const known = runtime.qos2In.delete(id);
    if (known) this.#inflight = Math.max(0, this.#inflight - 1);
    c.trace('*', 'qos2-step', () => `3/4 PUBREL id=${id} -> 4/4 PUBCOMP${known ? '' : ' (id not found)'}`);
    // PUBCOMP in order after any PUBACK / PUBREC still waiting for the broker.
    this.#answers.push({ rc: RC.SUCCESS, send: () => c.send({ cmd: 'pubcomp', messageId: id, ...(c.version === 5 && !known ? { reasonCode: RC.PACKET_ID_NOT_FOUND } : {}) }), closeOnRefusal: false });
    this.#flushAnswers();
  }

  /** Sends the ack when the broker answered, in arrival order; a refusal on 3.1.1 (no negative ack there) closes. */
  #answer(stored: Promise<number>, send: (rc: number) => void, closeOnRefusal: boolean): void {
    const a: Answer = { rc: undefined, send, closeOnRefusal };
    this.#answers.push(a);
    void stored.then((rc) => {
      a.rc = rc;
      this.#flushAnswers();
    });
  }

  /** Sends every answer at the head of the queue whose broker answer came (a later one waits for the earlier ones). */
  #flushAnswers(): void {
    const q = this.#answers;
    while (this.#answersHead < q.length) {
      const a = q[this.#answersHead]!;
      if (a.rc === undefined) break;
      this.#answersHead++;
      if (a.rc >= 0x80 && a.closeOnRefusal) this.#c.badInput('publish-refused', `publish refused (reason 0x${a.rc.toString(16)}); 3.1.1 has no negative ack`, undefined);
      else a.send(a.rc);
    }
    if (this.#answersHead === q.length) {
      q.length = 0;
      this.#answersHead = 0;
    } else if (this.#answersHead > 1024) {
      q.splice(0, this.#answersHead);
      this.#answersHead = 0;
    }
  }

  /** Hands the message to the broker (and the retained store); resolves to the reason code, never rejects. */
  #store(p: IPublishPacket, topic: string): Promise<number> {
    const c = this.#c;
    let input: PublishInput;
    try {
      const props = p.properties ?? {};
      input = {
        topic: topicToSubject(topic),
        payload: Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload),
        headers: headersFromProperties(props, p.qos, p.retain, c.clientId),
        ...(props.messageExpiryInterval !== undefined ? { ttlMs: props.messageExpiryInterval * 1000 } : {}),
        ...(p.qos === 0 ? { acks: 0 as const } : {}),
      };
    } catch (err) {
      return Promise.resolve(this.#refused(err, p.qos));
    }
    let published: Promise<unknown>;
    try {
      published = this.#publish(c.session!, input, p.qos, p.retain);
    } catch (err) {
      return Promise.resolve(this.#refused(err, p.qos));
    }
    return published.then(
      () => RC.SUCCESS,
      (err: unknown) => this.#refused(err, p.qos),
    );
  }

  #refused(err: unknown, qos: number): number {
    const c = this.#c;
    const code = err instanceof PubsubError ? err.code : undefined;
    const rc = reasonForError(code);
    c.trace('*', 'publish-refused', () => ({ summary: `${code ?? 'error'}: ${err instanceof Error ? err.message : String(err)}`, meta: { code, rc, qos } }));
    if (qos === 0) {
      // No ack to carry it: on 5 a DISCONNECT says why, on 3.1.1 the connection closes.
      c.badInput('publish-refused', `QoS 0 publish refused: ${code ?? 'error'}`, rc);
    }
    return rc;
  }

  #publish(session: Session, input: PublishInput, qos: 0 | 1 | 2, retain: boolean): Promise<unknown> {
    if (!retain) return session.publish(input);
    return this.#publishRetained(session, input, qos);
  }

  async #publishRetained(session: Session, input: PublishInput, qos: 0 | 1 | 2): Promise<void> {
    const c = this.#c;
    const { [RETAIN_HEADER]: _r, [CLIENT_HEADER]: _c, [QOS_HEADER]: _q, ...headers } = input.headers ?? {};
    const stored = { subject: input.topic, payload: input.payload, qos, headers, timestamp: Date.now(), ...(input.ttlMs ? { expiresAt: Date.now() + input.ttlMs } : {}) };
    // A retained message with an empty payload is delivered as usual and clears the stored one.
    await session.publish(input);
    await c.door.store.setRetained(stored, input.ttlMs);
  }

  async publishWill(session: Session, will: Will): Promise<void> {
    this.#c.trace('*', 'will', () => `publishing the will of ${this.#c.clientId} on ${will.subject}`);
    await this.#publish(session, { topic: will.subject, payload: will.payload, headers: will.headers, ...(will.ttlMs ? { ttlMs: will.ttlMs } : {}) }, will.qos, will.retain);
  }
}

function rc0x80(version: 4 | 5): boolean {
  return version === 4;
}
