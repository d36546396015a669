import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { ErrorCodes } from '../../../core/errors.ts';
import { getTlsMaterial } from '../../../core/tls/index.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { hashPassword, signMessage } from '../../../pubsub/broker/index.ts';
import { requirePeer } from '../../helpers/peers.ts';
import { curl, startDoor, type DoorUnderTest } from './http-helpers.ts';

let d: DoorUnderTest;
before(async () => {
  d = await startDoor({ maxPayloadBytes: 100 }, { limits: { maxBodyBytes: 1000 } });
});
after(async () => d?.close());

const code = (a: { json: unknown }): string | undefined => (a.json as { code?: string } | undefined)?.code;

test('curl publishes: 201 with the ack, offsets count up, headers and query both work', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const a = await curl(['-X', 'POST', '-H', 'Content-Type: text/plain', '-H', 'X-Header-Trace: abc', '--data-binary', 'hello', `${d.url}/topics/orders.eu`]);
  assert.equal(a.status, 201);
  assert.deepEqual({ ...(a.json as object), timestamp: 0 }, { topic: 'orders.eu', partition: 0, offset: 0, timestamp: 0, duplicate: false });
  const b = await curl(['-X', 'POST', '--data-binary', 'second', `${d.url}/topics/orders.eu?acks=1&key=k1`]);
  assert.equal(b.status, 201);
  assert.equal((b.json as { offset: number }).offset, 1);
  const [rec] = await d.broker.engine.read('orders.eu', 0, 0, 1);
  assert.equal(rec!.payload.toString(), 'hello');
  assert.equal(rec!.headers['content-type'], 'text/plain');
  assert.equal(rec!.headers.trace, 'abc');
  const [rec2] = await d.broker.engine.read('orders.eu', 0, 1, 1);
  assert.equal(rec2!.key, 'k1');
});

test('a repeated X-Msg-Id (or Idempotency-Key) is a 200 duplicate with the first offset; acks=0 is 202', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const first = await curl(['-X', 'POST', '-H', 'X-Msg-Id: m-1', '--data-binary', 'once', `${d.url}/topics/dedup`]);
  const again = await curl(['-X', 'POST', '-H', 'Idempotency-Key: m-1', '--data-binary', 'once', `${d.url}/topics/dedup`]);
  assert.equal(first.status, 201);
  assert.equal(again.status, 200);
  assert.equal((again.json as { duplicate: boolean }).duplicate, true);
  assert.equal((again.json as { offset: number }).offset, (first.json as { offset: number }).offset);
  const zero = await curl(['-X', 'POST', '-H', 'X-Acks: 0', '--data-binary', 'fire and forget', `${d.url}/topics/dedup`]);
  assert.equal(zero.status, 202);
  const info = await d.broker.engine.topic('dedup');
  assert.equal(info!.partitionInfo[0]!.nextOffset, 2, 'the duplicate was stored once, the acks=0 one once');
});

test('bad input: a bad topic 400, a wildcard topic 400, a bad X-Acks 400, payload over maxPayloadBytes 413, body over maxBodyBytes 413, wrong method 405', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const badTopic = await curl(['-X', 'POST', '--data-binary', 'x', `${d.url}/topics/a..b`]);
  assert.equal(badTopic.status, 400);
  assert.equal(code(badTopic), ErrorCodes.PUBSUB_INVALID);
  const wild = await curl(['-X', 'POST', '--data-binary', 'x', `${d.url}/topics/a.*`]);
  assert.equal(wild.status, 400);
  assert.equal(code(wild), ErrorCodes.PUBSUB_INVALID);
  const acks = await curl(['-X', 'POST', '-H', 'X-Acks: 2', '--data-binary', 'x', `${d.url}/topics/a`]);
  assert.equal(acks.status, 400);
  const ttl = await curl(['-X', 'POST', '-H', 'X-TTL-Ms: soon', '--data-binary', 'x', `${d.url}/topics/a`]);
  assert.equal(ttl.status, 400);
  const big = await curl(['-X', 'POST', '--data-binary', 'x'.repeat(200), `${d.url}/topics/a`]);
  assert.equal(big.status, 413);
  assert.equal(code(big), ErrorCodes.PUBSUB_LIMIT);
  assert.equal((big.json as { limit: string }).limit, 'maxPayloadBytes');
  const huge = await curl(['-X', 'POST', '--data-binary', 'x'.repeat(5000), `${d.url}/topics/a`]);
  assert.equal(huge.status, 413);
  assert.equal(code(huge), ErrorCodes.HTTP_BODY_TOO_LARGE);
  const get = await curl([`${d.url}/topics/a`]);
  assert.equal(get.status, 405);
  assert.match(get.headers.allow ?? '', /POST/);
  assert.equal((await curl([`${d.url}/nowhere`])).status, 404);
  assert.ok(d.door.doorStats.refused[ErrorCodes.PUBSUB_INVALID]! >= 4, 'refusals are counted by code');
});

test('a malformed request gets 400 and the door keeps serving', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const answer = await new Promise<string>((resolve, reject) => {
    const s = net.connect(d.door.port, '127.0.0.1', () => s.write('POST /topics/x HTTP/1.1\r\nContent-Length: nope\r\n\r\n'));
    let got = '';
    s.on('data', (c) => (got += c));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 400/);
  const ok = await curl(['-X', 'POST', '--data-binary', 'still here', `${d.url}/topics/after.bad`]);
  assert.equal(ok.status, 201);
});

test('auth and limits: 401 with WWW-Authenticate, 403 for the ACL and a bad signature, 429 with Retry-After, 409 for acks=all without fsync', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const a = await startDoor({
    users: [
      { name: 'alice', passwordHash: await hashPassword('wonderland', { N: 1024 }) },
      { name: 'bob', token: 'bob-token-123', permissions: { publish: { allow: ['public.>'] } } },
    ],
    allowInsecureAuth: true,
    rateLimit: { perSecond: 0.001, burst: 3 },
  });
  t.after(() => a.close());
  const none = await curl(['-X', 'POST', '--data-binary', 'x', `${a.url}/topics/public.news`]);
  assert.equal(none.status, 401);
  assert.equal(code(none), ErrorCodes.PUBSUB_AUTH);
  assert.match(none.headers['www-authenticate'] ?? '', /Basic realm=/);
  const wrong = await curl(['-u', 'alice:nope', '-X', 'POST', '--data-binary', 'x', `${a.url}/topics/public.news`]);
  assert.equal(wrong.status, 401);
  const garbage = await curl(['-H', 'Authorization: Digest abc', '-X', 'POST', '--data-binary', 'x', `${a.url}/topics/public.news`]);
  assert.equal(garbage.status, 401);
  const ok = await curl(['-u', 'alice:wonderland', '-X', 'POST', '--data-binary', 'x', `${a.url}/topics/private.x`]);
  assert.equal(ok.status, 201);
  const acl = await curl(['-H', 'Authorization: Bearer bob-token-123', '-X', 'POST', '--data-binary', 'x', `${a.url}/topics/private.x`]);
  assert.equal(acl.status, 403);
  assert.equal(code(acl), ErrorCodes.PUBSUB_ACL);
  // bob's bucket: 3 tokens (the ACL refusal may or may not have taken one), then 429.
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await curl(['-H', 'Authorization: Bearer bob-token-123', '-X', 'POST', '--data-binary', 'x', `${a.url}/topics/public.news`])).status);
  const limited = await curl(['-H', 'Authorization: Bearer bob-token-123', '-X', 'POST', '--data-binary', 'x', `${a.url}/topics/public.news`]);
  assert.equal(limited.status, 429);
  assert.equal(code(limited), ErrorCodes.PUBSUB_RATE);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
  assert.ok(statuses.includes(201) && statuses.includes(429), `201s then 429s: ${statuses}`);

  const clear = await startDoor({ users: [{ name: 'carol', token: 'carol-token-1' }] });
  t.after(() => clear.close());
  const refused = await curl(['-H', 'Authorization: Bearer carol-token-1', '-X', 'POST', '--data-binary', 'x', `${clear.url}/topics/t`]);
  assert.equal(refused.status, 401, 'a token over cleartext HTTP is refused unless allowInsecureAuth');

  const never = await startDoor({ fsync: 'never' });
  t.after(() => never.close());
  const durable = await curl(['-X', 'POST', '-H', 'X-Acks: all', '--data-binary', 'x', `${never.url}/topics/t`]);
  assert.equal(durable.status, 409);
  assert.equal(code(durable), ErrorCodes.PUBSUB_DURABILITY);

  const signed = await startDoor({ signing: { keys: { p1: { alg: 'hmac-sha256', secret: 'a-shared-secret-of-32-bytes-long!' } }, require: true } });
  t.after(() => signed.close());
  const unsigned = await curl(['-X', 'POST', '--data-binary', 'x', `${signed.url}/topics/t`]);
  assert.equal(unsigned.status, 403);
  assert.equal(code(unsigned), ErrorCodes.PUBSUB_SIGNATURE);
  // Signature headers travel as X-Header-<name>: a good one is stored, a forged one (wrong secret) refused.
  const sign = (secret: string): string[] =>
    Object.entries(signMessage({ topic: 't', payload: Buffer.from('x'), signer: 'p1', key: { alg: 'hmac-sha256', secret } })).flatMap(([k, v]) => ['-H', `X-Header-${k}: ${v}`]);
  const good = await curl(['-X', 'POST', ...sign('a-shared-secret-of-32-bytes-long!'), '--data-binary', 'x', `${signed.url}/topics/t`]);
  assert.equal(good.status, 201);
  const forged = await curl(['-X', 'POST', ...sign('not-the-secret-at-all-0123456789'), '--data-binary', 'x', `${signed.url}/topics/t`]);
  assert.equal(forged.status, 403);
  assert.equal(code(forged), ErrorCodes.PUBSUB_SIGNATURE);
});

test('over HTTPS a password is accepted (over cleartext it is a 401); refusals are trace events, and secrets are not in them', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const sink = new MemorySink();
  const tracer = createTracer([sink]);
  const s = await startDoor({ users: [{ name: 'alice', passwordHash: await hashPassword('s3cret-pw', { N: 1024 }) }] }, { tls: true, tracer });
  const clear = await startDoor({ users: [{ name: 'alice', passwordHash: await hashPassword('s3cret-pw', { N: 1024 }) }] });
  t.after(async () => {
    await s.close();
    await clear.close();
  });
  const { caCertPath } = await getTlsMaterial();
  const https = s.url.replace('127.0.0.1', 'localhost');
  const ok = await curl(['--cacert', caCertPath, '-u', 'alice:s3cret-pw', '-X', 'POST', '--data-binary', 'over tls', `${https}/topics/secure.t`]);
  assert.equal(ok.status, 201);
  const h2 = await curl(['--http2', '--cacert', caCertPath, '-u', 'alice:wrong', '-X', 'POST', '--data-binary', 'x', `${https}/topics/secure.t`]);
  assert.equal(h2.status, 401);
  assert.equal(code(h2), ErrorCodes.PUBSUB_AUTH);
  const cleartext = await curl(['-u', 'alice:s3cret-pw', '-X', 'POST', '--data-binary', 'x', `${clear.url}/topics/t`]);
  assert.equal(cleartext.status, 401);
  const bad = await curl(['--cacert', caCertPath, '-u', 'alice:s3cret-pw', '-X', 'POST', '--data-binary', 'x', `${https}/topics/bad..topic`]);
  assert.equal(bad.status, 400);
  const refused = sink.events.filter((e) => e.proto === 'pubsub-http' && e.kind === 'refused');
  assert.ok(refused.some((e) => (e.meta as { code?: string }).code === ErrorCodes.PUBSUB_INVALID && (e.meta as { status?: number }).status === 400));
  assert.ok(refused.some((e) => (e.meta as { code?: string }).code === ErrorCodes.PUBSUB_AUTH));
  assert.ok(!JSON.stringify(sink.events).includes('s3cret-pw'), 'the password is in no trace event');
});
