import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { authenticate, hashPassword, verifyPassword } from '../../../pubsub/broker/auth.ts';
import { mayPublish, mayReceive, maySubscribe } from '../../../pubsub/broker/acl.ts';
import { SignatureVerifier, signMessage } from '../../../pubsub/broker/signing.ts';
import { TokenBucket } from '../../../pubsub/broker/rate.ts';
import { resolveBrokerOptions } from '../../../pubsub/broker/options.ts';
import type { ConnectInfo } from '../../../pubsub/broker/types.ts';

const FAST = { N: 1024 };

test('scrypt: a hash verifies its password only; a malformed hash never matches', async () => {
  const h = await hashPassword('s3cret', FAST);
  assert.match(h, /^scrypt\$1024\$8\$1\$/);
  assert.equal(await verifyPassword('s3cret', h), true);
  assert.equal(await verifyPassword('s3cret!', h), false);
  assert.equal(await verifyPassword('s3cret', 'scrypt$x'), false);
  assert.notEqual(await hashPassword('s3cret', FAST), h, 'salted');
});

test('authenticate: password, token, unknown user, cleartext refused unless allowed, anonymous rule', async () => {
  const users = [
    { name: 'alice', passwordHash: await hashPassword('wonderland', FAST) },
    { name: 'svc', token: 'tok-0123456789' },
  ];
  const tls = (credentials: ConnectInfo['credentials']): ConnectInfo => ({ door: 'tcp', peer: '127.0.0.1:1', tls: true, credentials });
  const config = { users, allowAnonymous: false, allowInsecureAuth: false };
  assert.equal((await authenticate(config, tls({ user: 'alice', password: 'wonderland' })))?.name, 'alice');
  assert.equal((await authenticate(config, tls({ token: 'tok-0123456789' })))?.name, 'svc');
  for (const bad of [{ user: 'alice', password: 'nope' }, { user: 'bob', password: 'wonderland' }, { token: 'tok-wrong' }, undefined]) {
    await assert.rejects(authenticate(config, tls(bad)), { code: 'WL_ERR_PUBSUB_AUTH' });
  }
  const clear: ConnectInfo = { door: 'ws', peer: '127.0.0.1:1', tls: false, credentials: { user: 'alice', password: 'wonderland' } };
  await assert.rejects(authenticate(config, clear), { code: 'WL_ERR_PUBSUB_AUTH' });
  await assert.rejects(authenticate(config, { ...clear, credentials: { token: 'tok-0123456789' } }), { code: 'WL_ERR_PUBSUB_AUTH' });
  assert.equal((await authenticate({ ...config, allowInsecureAuth: true }, clear))?.name, 'alice');
  assert.equal(await authenticate({ ...config, allowAnonymous: true }, tls(undefined)), undefined);
  // Defaults: anonymous only when no users are configured.
  assert.equal(resolveBrokerOptions({}).allowAnonymous, true);
  assert.equal(resolveBrokerOptions({ users }).allowAnonymous, false);
});

test('ACLs: allow / deny with * and >, deny wins; subscribe needs covering; partial deny filters', () => {
  const p = {
    publish: { allow: ['orders.>', 'audit.*'], deny: ['orders.secret.>'] },
    subscribe: { allow: ['orders.>', 'public.*'], deny: ['orders.secret'] },
  };
  assert.equal(mayPublish(p, 'orders.eu'), true);
  assert.equal(mayPublish(p, 'orders.eu.x'), true);
  assert.equal(mayPublish(p, 'orders.secret.x'), false, 'deny wins');
  assert.equal(mayPublish(p, 'audit.login'), true);
  assert.equal(mayPublish(p, 'audit.login.x'), false, '* is one token');
  assert.equal(mayPublish(p, 'payments'), false);
  assert.equal(mayPublish(undefined, 'anything'), true);
  assert.equal(mayPublish({ publish: { deny: ['>'] } }, 'a'), false);
  assert.equal(maySubscribe(p, 'orders.*'), true);
  assert.equal(maySubscribe(p, 'orders.>'), true);
  assert.equal(maySubscribe(p, 'orders.secret'), false, 'fully denied');
  assert.equal(maySubscribe(p, '>'), false, 'not covered by any allow');
  assert.equal(maySubscribe(p, 'public.*'), true);
  assert.equal(maySubscribe(p, 'public.>'), false);
  assert.equal(mayReceive(p, 'orders.secret'), false, 'partial deny filters at delivery');
  assert.equal(mayReceive(p, 'orders.eu'), true);
  assert.throws(() => resolveBrokerOptions({ users: [{ name: 'x', token: 'tok-0123456789', permissions: { publish: { allow: ['a.>.b'] } } }] }), {
    code: 'WL_ERR_INVALID_OPTION',
    option: 'users[0].permissions.publish.allow',
  });
});

test('signatures: Ed25519 and HMAC verify; forged, moved, unknown, stale and (when required) unsigned are refused', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const secret = 'hmac-secret-0123456789';
  const v = new SignatureVerifier({ keys: { billing: { alg: 'ed25519', publicKey: publicKey.export({ type: 'spki', format: 'pem' }) as string }, ops: { alg: 'hmac-sha256', secret } } });
  const payload = Buffer.from('{"amount":42}');
  const ed = signMessage({ topic: 'orders.eu', payload, msgId: 'm1', signer: 'billing', key: { alg: 'ed25519', privateKey } });
  assert.equal(v.check('orders.eu', payload, 'm1', ed), 'billing');
  const hm = signMessage({ topic: 'orders.eu', payload, signer: 'ops', key: { alg: 'hmac-sha256', secret } });
  assert.equal(v.check('orders.eu', payload, undefined, hm), 'ops');
  assert.equal(v.check('orders.eu', payload, undefined, {}), undefined, 'unsigned accepted when not required');
  const refusals: [string, () => unknown][] = [
    ['payload changed', () => v.check('orders.eu', Buffer.from('{"amount":43}'), 'm1', ed)],
    ['moved topic', () => v.check('orders.us', payload, 'm1', ed)],
    ['msgId changed', () => v.check('orders.eu', payload, 'm2', ed)],
    ['wrong hmac key', () => v.check('orders.eu', payload, undefined, signMessage({ topic: 'orders.eu', payload, signer: 'ops', key: { alg: 'hmac-sha256', secret: 'another-secret-0123' } }))],
    ['unknown signer', () => v.check('orders.eu', payload, 'm1', { ...ed, 'wl-signer': 'mallory' })],
    ['garbage', () => v.check('orders.eu', payload, 'm1', { ...ed, 'wl-signature': 'AAAA' })],
    ['stale', () => v.check('orders.eu', payload, 'm1', signMessage({ topic: 'orders.eu', payload, msgId: 'm1', signer: 'billing', key: { alg: 'ed25519', privateKey }, signedAt: Date.now() - 3_600_000 }))],
    ['required', () => new SignatureVerifier({ keys: {}, require: true }).check('orders.eu', payload, undefined, {})],
  ];
  for (const [what, f] of refusals) assert.throws(f, { code: 'WL_ERR_PUBSUB_SIGNATURE' }, what);
  assert.throws(() => new SignatureVerifier({ keys: { x: { alg: 'hmac-sha256', secret: 'short' } } }), { code: 'WL_ERR_INVALID_OPTION' });
});

test('token bucket: burst then refusals, counted', () => {
  const b = new TokenBucket(0.001, 5);
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < 20; i++) {
    if (b.take()) ok++;
    else refused++;
  }
  assert.equal(ok, 5);
  assert.equal(refused, 15);
});

test('options: each bad option throws naming it', () => {
  const bad: [object, string][] = [
    [{ maxConnections: 0 }, 'maxConnections'],
    [{ maxTopics: -1 }, 'maxTopics'],
    [{ maxPayloadBytes: 1.5 }, 'maxPayloadBytes'],
    [{ buffer: { policy: 'explode' } }, 'buffer.policy'],
    [{ buffer: { size: 0 } }, 'buffer.size'],
    [{ defaultAcks: 2 }, 'defaultAcks'],
    [{ fsync: 'sometimes' }, 'fsync'],
    [{ rateLimit: { perSecond: 0, burst: 1 } }, 'rateLimit.perSecond'],
    [{ users: [{ name: 'a' }] }, 'users[0]'],
    [{ users: [{ name: 'a', passwordHash: 'plain' }] }, 'users[0].passwordHash'],
    [{ maxBlockMs: -1 }, 'maxBlockMs'],
  ];
  for (const [o, option] of bad) assert.throws(() => resolveBrokerOptions(o), { code: 'WL_ERR_INVALID_OPTION', option }, option);
  const d = resolveBrokerOptions({});
  assert.deepEqual(d.buffer, { size: 1000, policy: 'block' });
  assert.equal(d.defaultAcks, 'all');
  assert.equal(resolveBrokerOptions({ fsync: 'never' }).defaultAcks, 1);
});
