/**
 * Problem 7, security: on an open broker anyone publishes anything: a forged payment "from billing", a publisher with no
 * business on the topic, a flood. Remedies: authentication + authorisation (users, passwords, publish permissions),
 * message signing (Ed25519, required), rate limits (a token bucket per session).
 */
import { generateKeyPairSync } from 'node:crypto';
import { PubsubError } from '../../core/errors.ts';
import { hashPassword, signMessage, type Broker, type Credentials, type Session } from '../../pubsub/broker/index.ts';
import { Env, sleep, until } from './harness.ts';

const FLOOD = 300;
const RATE = { perSecond: 50, burst: 20 };

interface Attempt {
  label: string;
  accepted: number;
  refused: Record<string, number>;
}

/** Publishes `count` copies; counts accepted and refusals by code. */
async function attempt(label: string, publish: () => Promise<unknown>, count = 1): Promise<Attempt> {
  const a: Attempt = { label, accepted: 0, refused: {} };
  await Promise.all(
    Array.from({ length: count }, async () => {
      try {
        await publish();
        a.accepted++;
      } catch (err) {
        const code = err instanceof PubsubError ? err.code : 'other';
        a.refused[code] = (a.refused[code] ?? 0) + 1;
      }
    }),
  );
  return a;
}

/** A consumer of payments.> that counts what reached it by the payload's "from". */
async function payments(env: Env, b: Broker, credentials?: Credentials): Promise<Map<string, number>> {
  const got = new Map<string, number>();
  const s = await env.session(b, 'ledger', credentials);
  await s.subscribe({ pattern: 'payments.>', ack: 'none' }, (m) => {
    const from = (JSON.parse(m.payload.toString()) as { from: string }).from;
    got.set(from, (got.get(from) ?? 0) + 1);
    return true;
  });
  return got;
}

const pay = (from: string, amount: number): Buffer => Buffer.from(JSON.stringify({ from, amount }));
const refusedBy = (a: Attempt, code: string): number => a.refused[code] ?? 0;
const show = (a: Attempt): string => `${a.accepted} accepted${Object.entries(a.refused).map(([c, n]) => `, ${n} refused ${c.replace('WL_ERR_PUBSUB_', '')}`).join('')}`;

export async function security(env: Env): Promise<void> {
  const { ctx } = env;
  const rows: Array<Array<string | number>> = [];
  const row = (setup: string, a: Attempt, reached: number): void => {
    rows.push([setup, a.label, a.accepted + Object.values(a.refused).reduce((x, y) => x + y, 0), a.accepted, Object.entries(a.refused).map(([c, n]) => `${n} ${c.replace('WL_ERR_PUBSUB_', '')}`).join(', ') || '0', reached]);
  };

  // No remedy: an open broker.
  {
    const b = await env.broker();
    const got = await payments(env, b);
    const mallory = await env.session(b, 'mallory');
    const forged = await attempt('forged payment "from billing"', () => mallory.publish({ topic: 'payments.in', payload: pay('billing', 1_000_000), acks: 1 }));
    const flood = await attempt(`flood of ${FLOOD}`, () => mallory.publish({ topic: 'payments.in', payload: pay('mallory', 1), acks: 1 }), FLOOD);
    await until(() => (got.get('mallory') ?? 0) >= flood.accepted, 2000);
    row('no remedy: open broker', forged, got.get('billing') ?? 0);
    row('no remedy: open broker', flood, got.get('mallory') ?? 0);
    ctx.claim('security: an open broker takes a forged "billing" payment and a flood from anyone, and the consumer acts on them', got.get('billing') === 1 && flood.accepted === FLOOD && got.get('mallory') === FLOOD, `forged: ${show(forged)}; flood: ${show(flood)}`);
  }
  // Remedy 1: authn + authz.
  {
    const b = await env.broker({
      users: [
        { name: 'billing', passwordHash: await hashPassword('billing-secret'), permissions: { publish: { allow: ['payments.>'] } } },
        { name: 'mallory', passwordHash: await hashPassword('mallory-secret'), permissions: { publish: { allow: ['chat.>'] } } },
        { name: 'ledger', token: 'ledger-token', permissions: { publish: { allow: [] }, subscribe: { allow: ['payments.>'] } } },
      ],
      allowInsecureAuth: true,
    });
    const got = await payments(env, b, { token: 'ledger-token' });
    let anonymous = 'accepted';
    try {
      await env.session(b, 'anonymous');
    } catch (err) {
      anonymous = err instanceof PubsubError ? err.code : 'other';
    }
    let guessed = 'accepted';
    try {
      await env.session(b, 'guess', { user: 'billing', password: 'password123' });
    } catch (err) {
      guessed = err instanceof PubsubError ? err.code : 'other';
    }
    const mallory = await env.session(b, 'mallory', { user: 'mallory', password: 'mallory-secret' });
    const unauthorised = await attempt('mallory (logged in) publishes a payment', () => mallory.publish({ topic: 'payments.in', payload: pay('billing', 1_000_000), acks: 1 }));
    const billing = await env.session(b, 'billing', { user: 'billing', password: 'billing-secret' });
    const legit = await attempt('billing publishes a payment', () => billing.publish({ topic: 'payments.in', payload: pay('billing', 10), acks: 1 }));
    await until(() => (got.get('billing') ?? 0) >= legit.accepted, 1000);
    rows.push(['remedy: users + permissions', 'connect without credentials', 1, 0, anonymous.replace('WL_ERR_PUBSUB_', ''), 0]);
    rows.push(['remedy: users + permissions', 'connect as billing, guessed password', 1, 0, guessed.replace('WL_ERR_PUBSUB_', ''), 0]);
    row('remedy: users + permissions', unauthorised, 0);
    row('remedy: users + permissions', legit, got.get('billing') ?? 0);
    ctx.claim(
      'security: with authentication and permissions, anonymous and wrong-password sessions are refused, a user without publish rights on payments is refused, billing still publishes',
      anonymous === 'WL_ERR_PUBSUB_AUTH' && guessed === 'WL_ERR_PUBSUB_AUTH' && refusedBy(unauthorised, 'WL_ERR_PUBSUB_ACL') === 1 && legit.accepted === 1 && got.get('billing') === 1 && b.stats().rejected.acl >= 1,
      `anonymous: ${anonymous}; guessed password: ${guessed}; mallory: ${show(unauthorised)}; billing: ${show(legit)}`,
    );
  }
  // Remedy 2: signing (Ed25519), required: only billing's private key makes a valid "billing" payment.
  {
    const billingKeys = generateKeyPairSync('ed25519');
    const malloryKeys = generateKeyPairSync('ed25519');
    const b = await env.broker({ signing: { keys: { billing: { alg: 'ed25519', publicKey: billingKeys.publicKey } }, require: true } });
    const got = await payments(env, b);
    const s: Session = await env.session(b, 'anyone');
    const payload = pay('billing', 1_000_000);
    const unsigned = await attempt('unsigned payment "from billing"', () => s.publish({ topic: 'payments.in', payload, acks: 1 }));
    const forged = await attempt('signed with mallory\'s key as "billing"', () => s.publish({ topic: 'payments.in', payload, acks: 1, headers: signMessage({ topic: 'payments.in', payload, signer: 'billing', key: { alg: 'ed25519', privateKey: malloryKeys.privateKey } }) }));
    const good = signMessage({ topic: 'payments.in', payload: pay('billing', 10), signer: 'billing', key: { alg: 'ed25519', privateKey: billingKeys.privateKey } });
    const tampered = await attempt('billing\'s signature, amount changed', () => s.publish({ topic: 'payments.in', payload: pay('billing', 10_000), acks: 1, headers: good }));
    const legit = await attempt('signed by billing', () => s.publish({ topic: 'payments.in', payload: pay('billing', 10), acks: 1, headers: good }));
    await until(() => (got.get('billing') ?? 0) >= legit.accepted, 1000);
    for (const a of [unsigned, forged, tampered]) row('remedy: signing required (Ed25519)', a, 0);
    row('remedy: signing required (Ed25519)', legit, got.get('billing') ?? 0);
    ctx.claim(
      'security: with signatures required, an unsigned, a wrongly signed and a tampered payment are refused; only billing\'s signed one reaches the consumer',
      [unsigned, forged, tampered].every((a) => refusedBy(a, 'WL_ERR_PUBSUB_SIGNATURE') === 1) && legit.accepted === 1 && got.get('billing') === 1,
      `unsigned: ${show(unsigned)}; wrong key: ${show(forged)}; tampered: ${show(tampered)}; signed: ${show(legit)}`,
    );
  }
  // Remedy 3: rate limits.
  {
    const b = await env.broker({ rateLimit: RATE });
    const got = await payments(env, b);
    const mallory = await env.session(b, 'mallory');
    const t0 = Date.now();
    const flood = await attempt(`flood of ${FLOOD}`, () => mallory.publish({ topic: 'payments.in', payload: pay('mallory', 1), acks: 1 }), FLOOD);
    const elapsed = (Date.now() - t0) / 1000;
    const billing = await env.session(b, 'billing');
    const legit = await attempt('billing, meanwhile (own bucket)', () => billing.publish({ topic: 'payments.in', payload: pay('billing', 10), acks: 1 }));
    await until(() => (got.get('mallory') ?? 0) >= flood.accepted, 1000);
    await sleep(0);
    row(`remedy: rate limit ${RATE.perSecond}/s, burst ${RATE.burst}`, flood, got.get('mallory') ?? 0);
    row(`remedy: rate limit ${RATE.perSecond}/s, burst ${RATE.burst}`, legit, got.get('billing') ?? 0);
    const allowed = RATE.burst + Math.ceil(elapsed * RATE.perSecond) + 1;
    ctx.claim(
      'security: with a rate limit the flood gets at most the bucket\'s burst plus its rate through; the rest is refused and another publisher is not affected',
      flood.accepted <= allowed && refusedBy(flood, 'WL_ERR_PUBSUB_RATE') === FLOOD - flood.accepted && flood.accepted < FLOOD / 2 && legit.accepted === 1,
      `flood: ${show(flood)} in ${Math.round(elapsed * 1000)} ms (bucket allows ${allowed}); billing: ${show(legit)}`,
    );
  }
  ctx.table('security: attempts, what the broker accepted, what reached the consumer', ['setup', 'attempt', 'tried', 'accepted', 'refused', 'reached consumer'], rows);
}
