/**
 * The course's schema registry and event validation (seed 003): producers attach a schema id, consumers fetch the
 * schema by it; an incompatible change is refused by the registry (BACKWARD), what it would have broken is shown,
 * a default value fixes it; every kind of change is checked against BACKWARD / FORWARD / FULL; invalid payloads are
 * routed to a remedy topic by a validator service.
 */
import { createBroker } from '../pubsub/broker/index.ts';
import type { Message, Session } from '../pubsub/broker/types.ts';
import { SchemaRegistryClient, createDeserializer, createSerializer, frame, schemaValidator, startSchemaRegistry } from '../pubsub/schema/index.ts';
import { defineLab } from '../core/lab/index.ts';
import { waitFor } from './_pubsub.ts';

const MESSAGES = 20;
const order = (extra: unknown[], base: unknown[] = [{ name: 'id', type: 'string' }, { name: 'amount', type: 'double' }]): string =>
  JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields: [...base, ...extra] });
const V1 = order([]);
const NO_DEFAULT = order([{ name: 'currency', type: 'string' }]);
const WITH_DEFAULT = order([{ name: 'currency', type: 'string', default: 'EUR' }]);

/** Changes to a v1 schema and what Avro's resolution rules (the Avro spec) say about each, per level. */
const CHANGES: Array<{ change: string; from: string; to: string; backward: boolean; forward: boolean; withDefault?: boolean }> = [
  { change: 'add a field without a default', from: V1, to: NO_DEFAULT, backward: false, forward: true },
  { change: 'add a field with a default', from: V1, to: WITH_DEFAULT, backward: true, forward: true, withDefault: true },
  { change: 'remove a field that had no default', from: NO_DEFAULT, to: V1, backward: true, forward: false },
  { change: 'remove a field that had a default', from: WITH_DEFAULT, to: V1, backward: true, forward: true, withDefault: true },
  { change: 'widen int -> long', from: order([{ name: 'qty', type: 'int' }]), to: order([{ name: 'qty', type: 'long' }]), backward: true, forward: false },
  { change: 'narrow long -> int', from: order([{ name: 'qty', type: 'long' }]), to: order([{ name: 'qty', type: 'int' }]), backward: false, forward: true },
  { change: 'rename a field (no alias)', from: order([{ name: 'qty', type: 'int' }]), to: order([{ name: 'quantity', type: 'int' }]), backward: false, forward: false },
  { change: 'rename a field, old name as alias', from: order([{ name: 'qty', type: 'int', default: 0 }]), to: order([{ name: 'quantity', type: 'int', default: 0, aliases: ['qty'] }]), backward: true, forward: true, withDefault: true },
];

const ORDER_JSON_SCHEMA = JSON.stringify({
  type: 'object',
  properties: { id: { type: 'string' }, amount: { type: 'number', exclusiveMinimum: 0 }, currency: { type: 'string', enum: ['EUR', 'USD'] } },
  required: ['id', 'amount'],
});

async function collect(session: Session, pattern: string, group?: string): Promise<Message[]> {
  const got: Message[] = [];
  await session.subscribe({ pattern, ack: 'none', start: { kind: 'earliest' }, ...(group ? { group: { name: group, mode: 'queue' as const }, ack: 'manual' as const } : {}) }, (m) => {
    got.push(m);
    if (m.deliveryId) session.ack(m.deliveryId);
    return true;
  });
  return got;
}

/** Waits until `f()` holds, at most `ms` (false when it did not). */
const until = (f: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> => waitFor(f, ms, 5);

export default defineLab({
  id: 'schema-evolution',
  title: 'A schema registry: ids on the wire, compatibility levels, defaults, and a validator',
  concept: 'Producers and consumers agree through a registry: an incompatible change is refused before it breaks a consumer, a default value makes it safe, and invalid payloads go to a remedy topic instead of the consumer.',
  protocols: ['http', 'pubsub'],
  timeoutMs: 60_000,
  async run(ctx) {
    const broker = await createBroker({ tracer: ctx.tracer });
    ctx.defer(() => broker.close());
    const registry = await ctx.start(startSchemaRegistry({ engine: broker.engine, tracer: ctx.tracer }));
    const producerClient = await SchemaRegistryClient.create(registry.url);
    const consumerClient = await SchemaRegistryClient.create(registry.url);
    ctx.defer(() => Promise.all([producerClient.close(), consumerClient.close()]));
    const session = await broker.connect({ door: 'internal', peer: 'lab', tls: false });

    // 1. The registry's flow: the producer registers v1 once and sends its id with every message; the consumer
    //    fetches the schema by that id once.
    const v1 = createSerializer(producerClient, 'orders-value', V1);
    for (let i = 0; i < MESSAGES; i++) await session.publish({ topic: 'orders', payload: await v1.serialize({ id: `o${i}`, amount: 10 + i }), acks: 1 });
    const stored = await broker.engine.read('orders', 0, 0, 1000);
    const oldConsumer = createDeserializer(consumerClient, { schema: V1 });
    let decoded = 0;
    for (const r of stored) if ((await oldConsumer.deserialize(r.payload)).schemaId === 1) decoded++;
    ctx.table(`${MESSAGES} orders through the broker (Confluent's framing: 0x00, schema id, Avro binary)`, ['who', 'registry requests', 'what'], [
      ['producer', producerClient.requests.register ?? 0, 'POST /subjects/orders-value/versions, once: id cached'],
      ['consumer', consumerClient.requests.byId ?? 0, 'GET /schemas/ids/1, once: schema cached'],
      ['a message on the wire', '-', `${stored[0]!.payload.length} bytes: ${stored[0]!.payload.subarray(0, 5).toString('hex')} + Avro (JSON would be ${Buffer.from(JSON.stringify({ id: 'o0', amount: 10 })).length})`],
    ]);
    ctx.claim('the producer registered its schema once and the consumer fetched it once, for every message', producerClient.requests.register === 1 && consumerClient.requests.byId === 1 && decoded === MESSAGES,
      `${producerClient.requests.register} registration, ${consumerClient.requests.byId} fetch, ${decoded}/${MESSAGES} decoded with schema id 1`);

    // 2. A breaking change: a new required field. The registry (BACKWARD, the default) refuses it.
    const refused = await producerClient.register('orders-value', NO_DEFAULT).then(() => undefined, (err: { status?: number; message: string }) => err);
    ctx.claim('the registry refused a field without a default under BACKWARD (409): the new schema could not read old orders', refused?.status === 409,
      refused ? `${refused.status}: ${refused.message.slice(0, 140)}` : 'accepted');
    // What the refusal saved: a consumer upgraded to that schema against the orders already in the topic.
    const broken = createDeserializer(consumerClient, { schema: NO_DEFAULT });
    let failed = 0;
    let firstError = '';
    for (const r of stored) {
      try {
        await broken.deserialize(r.payload);
      } catch (err) {
        failed++;
        firstError ||= (err as Error).message;
      }
    }
    ctx.claim('a consumer upgraded to that schema anyway cannot read a single old order', failed === MESSAGES, `${failed}/${MESSAGES} failed: ${firstError}`);

    // 3. The fix the course names: a default value. Accepted; new consumers read old orders, old consumers read new ones.
    const v2 = createSerializer(producerClient, 'orders-value', WITH_DEFAULT);
    await session.publish({ topic: 'orders', payload: await v2.serialize({ id: 'o-new', amount: 99, currency: 'USD' }), acks: 1 });
    const all = await broker.engine.read('orders', 0, 0, 1000);
    const newConsumer = createDeserializer(consumerClient, { schema: WITH_DEFAULT });
    const newReads = await Promise.all(all.map(async (r) => (await newConsumer.deserialize(r.payload)).value as { currency: string }));
    const oldReads = await Promise.all(all.map(async (r) => (await oldConsumer.deserialize(r.payload)).value as { id: string; currency?: string }));
    const eur = newReads.filter((v) => v.currency === 'EUR').length;
    ctx.table('after v2 = v1 + currency (default "EUR")', ['consumer', 'old orders (v1)', 'the new order (v2)'], [
      ['new (reads with v2)', `${eur} read, currency = "EUR" (the default)`, `currency = "${newReads[newReads.length - 1]!.currency}"`],
      ['old (reads with v1)', `${oldReads.length - 1} read`, `read, currency ${oldReads[oldReads.length - 1]!.currency === undefined ? 'ignored' : 'seen'}`],
    ]);
    ctx.claim('with a default, the change was accepted (v2) and both generations of consumers read both generations of orders', eur === MESSAGES && newReads[MESSAGES]!.currency === 'USD' && oldReads.length === MESSAGES + 1 && oldReads[MESSAGES]!.id === 'o-new',
      `${eur} old orders read as EUR, new order as ${newReads[MESSAGES]!.currency}; old consumer read ${oldReads.length}`);

    // 4. Each kind of change against each level, asked of the registry's REST API on a fresh subject.
    const rows: Array<Array<string>> = [];
    let agree = 0;
    const withDefault: string[] = [];
    for (const [i, c] of CHANGES.entries()) {
      const verdicts: boolean[] = [];
      for (const level of ['BACKWARD', 'FORWARD', 'FULL']) {
        const subject = `change-${i}-${level.toLowerCase()}`;
        await producerClient.register(subject, c.from);
        await producerClient.setCompatibility(subject, level);
        verdicts.push((await producerClient.check(subject, c.to)).length === 0);
      }
      const expected = [c.backward, c.forward, c.backward && c.forward];
      if (verdicts.every((v, k) => v === expected[k])) agree++;
      if (c.withDefault) withDefault.push(`${c.change}: ${verdicts[2] ? 'FULL' : 'refused'}`);
      rows.push([c.change, ...verdicts.map((v) => (v ? 'compatible' : 'refused'))]);
    }
    ctx.table('each change checked by the registry (POST /compatibility/subjects/:s/versions/latest)', ['change from the registered schema', 'BACKWARD (new reads old)', 'FORWARD (old reads new)', 'FULL'], rows);
    ctx.claim("every verdict matches Avro's schema resolution rules (the Avro specification)", agree === CHANGES.length, `${agree}/${CHANGES.length} changes as the spec says`);
    ctx.claim('every change that carries a default passed FULL: "use default values for the fields" holds', withDefault.length === 3 && withDefault.every((w) => w.endsWith('FULL')), withDefault.join('; '));

    // 5. Event validation, the seed's validator pattern: a validator consumes raw events, forwards the valid ones and
    //    sends the rest to a remedy topic (one more hop through the broker for every event).
    const paymentsId = await producerClient.register('payments-value', ORDER_JSON_SCHEMA, 'JSON');
    const validatorReader = createDeserializer(consumerClient);
    const validatorSchema = await consumerClient.schemaById(paymentsId);
    const events = [
      { id: 'p1', amount: 5 }, { id: 'p2', amount: -1 }, { id: 'p3', amount: 7, currency: 'GBP' }, { id: 'p4' },
      { id: 'p5', amount: 9, currency: 'USD' }, { id: 'p6', amount: 3 },
    ];
    const valid = await collect(session, 'payments.valid');
    const remedy = await collect(session, 'payments.remedy');
    const publishedBefore = broker.stats().published;
    let forwarded = 0;
    await session.subscribe({ pattern: 'payments.raw', group: { name: 'validator', mode: 'queue' }, ack: 'manual', start: { kind: 'earliest' } }, (m) => {
      void (async () => {
        const { value } = await validatorReader.deserialize(m.payload);
        const issues = validatorSchema.validate(value);
        await session.publish({ topic: issues.length ? 'payments.remedy' : 'payments.valid', payload: m.payload, headers: issues.length ? { reason: issues.join('; ') } : {}, acks: 1 });
        forwarded++;
        session.ack(m.deliveryId!);
      })();
      return true;
    });
    // Producers that frame their events without validating them (a bug, an old version): the raw topic takes anything.
    for (const e of events) await session.publish({ topic: 'payments.raw', payload: frame(paymentsId, Buffer.from(JSON.stringify(e))), acks: 1 });
    await until(() => forwarded === events.length && valid.length + remedy.length === events.length);
    const hops = broker.stats().published - publishedBefore;
    ctx.table('the validator pattern: raw -> validator -> valid | remedy', ['event', 'went to', 'reason'], events.map((e) => {
      const r = remedy.find((m) => JSON.parse(m.payload.subarray(5).toString()).id === e.id);
      return [JSON.stringify(e), r ? 'payments.remedy' : valid.some((m) => JSON.parse(m.payload.subarray(5).toString()).id === e.id) ? 'payments.valid' : '(nowhere)', r?.headers.reason ?? ''];
    }));
    const expectInvalid = ['p2', 'p3', 'p4'];
    const remedyIds = remedy.map((m) => JSON.parse(m.payload.subarray(5).toString()).id as string).sort();
    ctx.claim('the consumer got only valid events and the remedy service every invalid one, with the reason', valid.length === events.length - expectInvalid.length && remedyIds.join() === expectInvalid.join() && remedy.every((m) => Boolean(m.headers.reason)),
      `valid ${valid.length}, remedy ${remedyIds.join(', ')}`);
    ctx.claim('the validator costs a second trip through the broker for every event (the seed: "more network calls")', hops === 2 * events.length, `${hops} publishes for ${events.length} events`);

    // 6. In-broker validation at publish (the seed: "in-broker validation, Redpanda's data transforms"): the broker
    //    checks each payload against the registry before storing it; the producer hears at once.
    const strict = await createBroker({ tracer: ctx.tracer, validators: [schemaValidator(registry.registry, 'payments.checked', { subject: 'payments-value' })] });
    ctx.defer(() => strict.close());
    const p2 = await strict.connect({ door: 'internal', peer: 'producer', tls: false });
    const verdicts: string[] = [];
    for (const e of events) {
      try {
        await p2.publish({ topic: 'payments.checked', payload: frame(paymentsId, Buffer.from(JSON.stringify(e))), acks: 1 });
        verdicts.push('stored');
      } catch (err) {
        verdicts.push(`${(err as { code: string }).code}: ${(err as Error).message.replace(/^refused by validation: /, '')}`);
      }
    }
    const storedChecked = (await strict.engine.read('payments.checked', 0, 0, 100)).length;
    ctx.table('in-broker validation: the same events published to a broker that checks them (validators: schemaValidator)', ['event', 'the producer got'], events.map((e, i) => [JSON.stringify(e), verdicts[i]!]));
    const refusedIds = events.filter((_, i) => verdicts[i] !== 'stored').map((e) => e.id);
    ctx.claim('the broker refused the invalid events at publish, the producer learning why at once, and stored only the valid ones: no second hop',
      refusedIds.join() === expectInvalid.join() && storedChecked === events.length - expectInvalid.length && strict.stats().rejected.invalid === expectInvalid.length && strict.stats().published === storedChecked,
      `refused ${refusedIds.join(', ')}; stored ${storedChecked}; ${strict.stats().published} publishes for ${events.length} events`);
  },
});
