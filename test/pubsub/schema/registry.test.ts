/**
 * The schema registry: its Confluent-compatible REST API driven by curl (routes, bodies, error_codes), the
 * compatibility levels on Avro (avsc's resolver) and JSON Schema, persistence in a `$schemas` topic across a restart,
 * and the serdes through the broker (Confluent's wire format, a reader schema's default filling a field).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBroker } from '../../../pubsub/broker/index.ts';
import { createEngine } from '../../../pubsub/engines/index.ts';
import { SchemaRegistry, SchemaRegistryClient, createDeserializer, createSerializer, startSchemaRegistry } from '../../../pubsub/schema/index.ts';
import { requirePeer } from '../../helpers/peers.ts';
import { run } from '../../helpers/run.ts';

const order = (fields: unknown[]): string => JSON.stringify({ type: 'record', name: 'Order', fields: [{ name: 'id', type: 'string' }, ...fields] });
const V1 = order([{ name: 'amount', type: 'double' }]);
const NO_DEFAULT = order([{ name: 'amount', type: 'double' }, { name: 'currency', type: 'string' }]);
const WITH_DEFAULT = order([{ name: 'amount', type: 'double' }, { name: 'currency', type: 'string', default: 'EUR' }]);

async function curl(url: string, method: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> & unknown[] }> {
  const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '-X', method, '-H', 'Content-Type: application/vnd.schemaregistry.v1+json'];
  if (body !== undefined) args.push('--data-binary', typeof body === 'string' ? body : JSON.stringify(body));
  const r = await run('curl', [...args, url]);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, body: JSON.parse(lines.join('\n') || 'null') };
}

test('curl drives the Confluent-style REST API: register, versions, ids, 409 when incompatible, config, compatibility check, error codes', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const server = await startSchemaRegistry();
  t.after(() => server.close());
  const u = server.url;
  const first = await curl(`${u}/subjects/orders-value/versions`, 'POST', { schema: V1 });
  assert.equal(first.status, 200);
  assert.equal(first.body.id, 1);
  assert.equal((await curl(`${u}/subjects/orders-value/versions`, 'POST', { schema: V1 })).body.id, 1, 'the same schema again: the same id, no new version');
  assert.deepEqual((await curl(`${u}/subjects`, 'GET')).body, ['orders-value']);
  assert.deepEqual((await curl(`${u}/subjects/orders-value/versions`, 'GET')).body, [1]);

  // BACKWARD (the default): a new field without a default cannot read old data.
  const refused = await curl(`${u}/subjects/orders-value/versions`, 'POST', { schema: NO_DEFAULT });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error_code, 409);
  assert.match(String(refused.body.message), /currency/);
  const check = await curl(`${u}/compatibility/subjects/orders-value/versions/latest?verbose=true`, 'POST', { schema: NO_DEFAULT });
  assert.equal(check.body.is_compatible, false);
  assert.ok((check.body.messages as unknown as string[]).length > 0);
  assert.equal((await curl(`${u}/compatibility/subjects/orders-value/versions/1`, 'POST', { schema: WITH_DEFAULT })).body.is_compatible, true);
  const second = await curl(`${u}/subjects/orders-value/versions`, 'POST', { schema: WITH_DEFAULT });
  assert.equal(second.body.id, 2);
  const latest = await curl(`${u}/subjects/orders-value/versions/latest`, 'GET');
  assert.deepEqual([latest.body.version, latest.body.id, latest.body.subject], [2, 2, 'orders-value']);
  assert.equal((await curl(`${u}/schemas/ids/2`, 'GET')).body.schema, WITH_DEFAULT);
  assert.equal((await curl(`${u}/subjects/orders-value`, 'POST', { schema: V1 })).body.version, 1, 'lookup finds the version holding a schema');

  // The same schema under another subject keeps its global id.
  assert.equal((await curl(`${u}/subjects/other-value/versions`, 'POST', { schema: V1 })).body.id, 1);

  // Config: the global level, a subject's own; NONE lets anything in.
  assert.equal((await curl(`${u}/config`, 'GET')).body.compatibilityLevel, 'BACKWARD');
  assert.equal((await curl(`${u}/config/orders-value`, 'GET')).status, 404);
  assert.equal((await curl(`${u}/config/orders-value`, 'PUT', { compatibility: 'NONE' })).body.compatibility, 'NONE');
  assert.equal((await curl(`${u}/config/orders-value`, 'GET')).body.compatibilityLevel, 'NONE');
  assert.equal((await curl(`${u}/subjects/orders-value/versions`, 'POST', { schema: order([{ name: 'amount', type: 'string' }]) })).status, 200);

  // Bad input: a protocol answer each, and the server keeps serving.
  const bad: Array<[string, string, unknown, number, number]> = [
    ['/subjects/nope/versions', 'GET', undefined, 404, 40401],
    ['/compatibility/subjects/nope/versions/latest', 'POST', { schema: V1 }, 404, 40401],
    ['/subjects/orders-value/versions/99', 'GET', undefined, 404, 40402],
    ['/schemas/ids/999', 'GET', undefined, 404, 40403],
    ['/subjects/x/versions', 'POST', { schema: '{"type":"record","name":"X","fields":[{"name":"a","type":"strin"}]}' }, 422, 42201],
    ['/subjects/x/versions', 'POST', { schema: 'not json' }, 422, 42201],
    ['/subjects/x/versions', 'POST', '{broken', 422, 42201],
    ['/subjects/x/versions', 'POST', { schema: V1, schemaType: 'PROTOBUF' }, 422, 42201],
    ['/subjects/orders-value/versions/abc', 'GET', undefined, 422, 42202],
    ['/config', 'PUT', { compatibility: 'SIDEWAYS' }, 422, 42203],
  ];
  for (const [path, method, body, status, code] of bad) {
    const r = await curl(`${u}${path}`, method, body);
    assert.deepEqual([r.status, r.body.error_code], [status, code], `${method} ${path}`);
  }
  const big = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '--data-binary', '@-', `${u}/subjects/x/versions`], { input: 'x'.repeat(2 * 1024 * 1024) });
  assert.equal(big.stdout, '413');
  assert.deepEqual((await curl(`${u}/subjects`, 'GET')).body, ['orders-value', 'other-value'], 'still serving');
});

test('compatibility levels: BACKWARD checks the latest only, BACKWARD_TRANSITIVE every version, FORWARD the other direction, FULL both', async () => {
  const r = await SchemaRegistry.open();
  const withX = order([{ name: 'x', type: 'int', default: 1 }]);
  const xNoDefault = order([{ name: 'x', type: 'int' }]);
  const bare = order([]);
  await r.register('b', bare);
  await r.register('b', withX);
  assert.deepEqual(r.check('b', xNoDefault), [], 'BACKWARD: reads v2 data (x present)');
  await r.setCompatibility('b', 'BACKWARD_TRANSITIVE');
  assert.ok(r.check('b', xNoDefault).some((m) => m.startsWith('version 1')), 'BACKWARD_TRANSITIVE: cannot read v1 data (no x, no default)');
  await r.register('f', withX);
  await r.setCompatibility('f', 'FORWARD');
  assert.deepEqual(r.check('f', order([{ name: 'x', type: 'int', default: 1 }, { name: 'y', type: 'string' }])), [], 'FORWARD: old readers ignore an added field');
  assert.ok(r.check('f', bare).length === 0, 'FORWARD: a removed field with a default in the old schema is fine');
  await r.register('g', xNoDefault);
  await r.setCompatibility('g', 'FORWARD');
  assert.ok(r.check('g', bare).length > 0, 'FORWARD: removing a field old readers need (no default) is refused');
  await r.setCompatibility('g', 'FULL');
  assert.ok(r.check('g', order([{ name: 'x', type: 'int' }, { name: 'z', type: 'long', default: 0 }])).length === 0, 'FULL: an added field with a default');
  assert.ok(r.check('g', order([{ name: 'x', type: 'long' }])).length > 0, 'FULL: int -> long promotes one way only');
});

test('JSON Schema: required and types decide, an open writer blocks new typed properties, ajv validates payloads', async () => {
  const r = await SchemaRegistry.open();
  const closed = JSON.stringify({ type: 'object', properties: { id: { type: 'integer' } }, required: ['id'], additionalProperties: false });
  await r.register('j', closed, 'JSON');
  assert.deepEqual(r.check('j', JSON.stringify({ type: 'object', properties: { id: { type: 'number' }, note: { type: 'string' } }, required: ['id'] }), 'JSON'), [], 'widened type, optional property added to a closed writer');
  assert.ok(r.check('j', JSON.stringify({ type: 'object', properties: { id: { type: 'integer' }, note: { type: 'string' } }, required: ['id', 'note'] }), 'JSON').length > 0, 'a new required property');
  assert.ok(r.check('j', JSON.stringify({ type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }), 'JSON').length > 0, 'a changed type');
  const open = JSON.stringify({ type: 'object', properties: { id: { type: 'integer' } } });
  await r.register('k', open, 'JSON');
  assert.ok(r.check('k', JSON.stringify({ type: 'object', properties: { id: { type: 'integer' }, note: { type: 'string' } } }), 'JSON').length > 0, 'an open writer may already carry "note" with another type');
  const parsed = r.byId((await r.register('v', closed, 'JSON')).id).parsed;
  assert.deepEqual(parsed.validate({ id: 3 }), []);
  assert.ok(parsed.validate({ id: 'x' }).length > 0);
  assert.ok(parsed.validate({ id: 3, extra: true }).length > 0);
});

test('the registry lives in the $schemas topic: a restart on the same engine directory finds every subject, version, id and level', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-schemas-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let engine = await createEngine({ kind: 'embedded', dir });
  let r = await SchemaRegistry.open({ engine });
  await r.register('orders-value', V1);
  await r.register('orders-value', WITH_DEFAULT);
  await r.setCompatibility('orders-value', 'FULL');
  const jsonId = (await r.register('clicks-value', JSON.stringify({ type: 'object' }), 'JSON')).id;
  await engine.close();
  engine = await createEngine({ kind: 'embedded', dir });
  t.after(() => engine.close());
  r = await SchemaRegistry.open({ engine });
  assert.deepEqual(r.subjects(), ['clicks-value', 'orders-value']);
  assert.deepEqual(r.versions('orders-value'), [1, 2]);
  assert.equal(r.get('orders-value', 'latest').id, 2);
  assert.equal(r.byId(jsonId).schemaType, 'JSON');
  assert.equal(r.compatibility('orders-value'), 'FULL');
  assert.equal((await r.register('new-value', V1)).id, 1, 'a known schema keeps its id');
  assert.equal((await r.register('new-value', order([{ name: 'q', type: 'int', default: 0 }]))).id, 4, 'ids go on after the highest stored');
});

test('serdes through the broker: Confluent framing, one registry call per schema id, a v2 reader fills the default for v1 messages', async (t) => {
  const server = await startSchemaRegistry();
  const broker = await createBroker({});
  const producerClient = await SchemaRegistryClient.create(server.url);
  const consumerClient = await SchemaRegistryClient.create(server.url);
  t.after(async () => {
    await producerClient.close();
    await consumerClient.close();
    await broker.close();
    await server.close();
  });
  const session = await broker.connect({ door: 'internal', peer: 'test', tls: false });
  const v1 = createSerializer(producerClient, 'orders-value', V1);
  const v2 = createSerializer(producerClient, 'orders-value', WITH_DEFAULT);
  for (let i = 0; i < 5; i++) await session.publish({ topic: 'orders', payload: await v1.serialize({ id: `o${i}`, amount: i }) });
  await session.publish({ topic: 'orders', payload: await v2.serialize({ id: 'o5', amount: 5, currency: 'USD' }) });
  await assert.rejects(v1.serialize({ id: 7 }), { code: 'WL_ERR_SCHEMA_INVALID' }, 'a value that does not fit is refused before it is sent');
  assert.equal(producerClient.requests.register, 2, 'one registration per schema');

  const reader = createDeserializer(consumerClient, { schema: WITH_DEFAULT });
  const records = await broker.engine.read('orders', 0, 0, 100);
  assert.equal(records.length, 6);
  assert.equal(records[0]!.payload[0], 0, 'magic byte');
  const values = [];
  for (const rec of records) values.push(await reader.deserialize(rec.payload));
  assert.deepEqual(values.map((v) => [v.schemaId, (v.value as { currency: string }).currency]), [[1, 'EUR'], [1, 'EUR'], [1, 'EUR'], [1, 'EUR'], [1, 'EUR'], [2, 'USD']]);
  assert.equal(consumerClient.requests.byId, 2, 'each writer schema fetched once');
  await assert.rejects(reader.deserialize(Buffer.from('plain text')), { code: 'WL_ERR_SCHEMA_INVALID' });
});

test('the `wirelab up` row: base + 8081, on the shared broker ($schemas in its log); its try and subjects commands work pasted into sh', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const dir = await mkdtemp(join(tmpdir(), 'wl-up-schemas-'));
  const before = process.env.WIRELAB_PUBSUB_DIR;
  process.env.WIRELAB_PUBSUB_DIR = dir;
  const { PUBSUB_SERVICES, SCHEMA_REGISTRY_PORT } = await import('../../../pubsub/services.ts');
  const { NOOP_TRACER } = await import('../../../core/trace/index.ts');
  const entry = PUBSUB_SERVICES.find((e) => e.name === 'schema-registry')!;
  assert.equal(entry.wellKnownPort, SCHEMA_REGISTRY_PORT);
  const server = await entry.start({ host: '127.0.0.1', port: 0, tracer: NOOP_TRACER });
  t.after(async () => {
    await server.close();
    if (before === undefined) delete process.env.WIRELAB_PUBSUB_DIR;
    else process.env.WIRELAB_PUBSUB_DIR = before;
    await rm(dir, { recursive: true, force: true });
  });
  const tried = await run('sh', ['-c', entry.tryWith(server)]);
  assert.deepEqual(JSON.parse(tried.stdout), { id: 1 }, tried.stderr);
  const subjects = await run('sh', ['-c', (entry.extra!(server, new Map()) as Record<string, string>).subjects!]);
  assert.deepEqual(JSON.parse(subjects.stdout), ['demo-value']);
});

test('in-broker validation (BrokerOptions.validators + schemaValidator): invalid payloads refused at publish with WL_ERR_PUBSUB_INVALID, counted; a throwing validator refuses too; the broker keeps serving', async (t) => {
  const { schemaValidator, frame } = await import('../../../pubsub/schema/index.ts');
  const registry = await SchemaRegistry.open();
  const { id } = await registry.register('pay-value', JSON.stringify({ type: 'object', properties: { amount: { type: 'number' } }, required: ['amount'] }), 'JSON');
  const other = (await registry.register('other-value', JSON.stringify({ type: 'object' }), 'JSON')).id;
  const broker = await createBroker({
    validators: [
      schemaValidator(registry, 'pay.>', { subject: 'pay-value' }),
      { pattern: 'boom', validate: () => { throw new Error('validator down'); } },
    ],
  });
  t.after(() => broker.close());
  const s = await broker.connect({ door: 'internal', peer: 'test', tls: false });
  const pub = (topic: string, payload: Buffer): Promise<unknown> => s.publish({ topic, payload, acks: 1 });
  await pub('pay.eu', frame(id, Buffer.from('{"amount":5}')));
  const refusals: Array<[string, Buffer, RegExp]> = [
    ['pay.eu', frame(id, Buffer.from('{"amount":"five"}')), /amount/],
    ['pay.eu', Buffer.from('{"amount":5}'), /no schema id/],
    ['pay.eu', frame(999, Buffer.from('{}')), /not registered/],
    ['pay.eu', frame(other, Buffer.from('{}')), /not a version of pay-value/],
    ['pay.eu', frame(id, Buffer.from('{not json')), /does not decode/],
    ['boom', Buffer.from('x'), /validator failed: validator down/],
  ];
  for (const [topic, payload, why] of refusals) await assert.rejects(pub(topic, payload), (err: Error & { code: string }) => err.code === 'WL_ERR_PUBSUB_INVALID' && why.test(err.message));
  await pub('elsewhere', Buffer.from('anything goes'));
  assert.equal(broker.stats().rejected.invalid, refusals.length);
  assert.equal((await broker.engine.read('pay.eu', 0, 0, 10)).length, 1, 'only the valid one stored');
  await assert.rejects(createBroker({ validators: [{ pattern: 'a..b', validate: () => [] }] }), { code: 'WL_ERR_INVALID_OPTION' });
});
