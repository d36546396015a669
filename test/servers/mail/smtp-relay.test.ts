import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { createSmtpClient, type SmtpClient } from '../../../clients/smtp.ts';
import { openMailStore, type MailStore } from '../../../servers/mail/store/index.ts';
import { startSmtpServer, type RelayOutcome, type RunningSmtpServer } from '../../../servers/smtp/index.ts';

// Two real MTAs on loopback: hop 1 (hop1.test, user ann) relays what it does not deliver to hop 2 (hop2.test, bob).
let store1: MailStore;
let store2: MailStore;
let hop1: RunningSmtpServer;
let hop2: RunningSmtpServer;
let client: SmtpClient;

before(async () => {
  store1 = await openMailStore({ memory: true, users: [{ name: 'ann', password: 'a' }], domains: ['hop1.test'] });
  store2 = await openMailStore({ memory: true, users: [{ name: 'bob', password: 'b' }], domains: ['hop2.test'] });
  hop2 = await startSmtpServer({ store: store2, hostname: 'mx.hop2.test', addReceived: true });
  hop1 = await startSmtpServer({ store: store1, hostname: 'mx.hop1.test', relay: { port: hop2.port, retryDelayMs: 20, maxAttempts: 3 } });
  client = await createSmtpClient({ port: hop1.port });
});
after(async () => {
  client.close();
  await Promise.all([hop1.close(), hop2.close()]);
});

const next = (): Promise<RelayOutcome> => (once(hop1.relay!, 'done') as Promise<[RelayOutcome]>).then(([o]) => o);
const inbox = (store: MailStore, user: string) => store.mailbox(user, 'INBOX')?.messages ?? [];

test('a message for another domain is queued, forwarded, and stamped by both hops, newest on top', async () => {
  const done = next();
  const sent = await client.send({ from: 'ann@hop1.test', to: 'bob@hop2.test', subject: 'hi', text: 'body\r\n' });
  assert.match(sent.response, /^250 .*Queued/);
  const outcome = await done;
  assert.deepEqual(outcome.accepted, ['bob@hop2.test']);
  assert.deepEqual(outcome.bounced, []);
  const raw = inbox(store2, 'bob').at(-1)!.raw.toString('utf8');
  const received = raw.split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ').split('\r\n').filter((l) => l.startsWith('Received:'));
  assert.equal(received.length, 2);
  assert.match(received[0]!, /from mx\.hop1\.test .*by mx\.hop2\.test/);
  assert.match(received[1]!, /from client\.wirelab\.test .*by mx\.hop1\.test/);
  assert.ok(raw.includes('body'));
  assert.equal(hop1.relay!.size, 0);
});

test('a 550 one hop on becomes a delivery status notification in the local sender\'s INBOX', async () => {
  const before = inbox(store1, 'ann').length;
  const done = next();
  await client.send({ from: 'ann@hop1.test', to: 'nobody@hop2.test', subject: 'lost', text: 'x\r\n' });
  const outcome = await done;
  assert.deepEqual(outcome.bounced.map((b) => [b.recipient, b.code]), [['nobody@hop2.test', 550]]);
  const dsn = inbox(store1, 'ann').at(-1)!.raw.toString('utf8');
  assert.equal(inbox(store1, 'ann').length, before + 1);
  assert.match(dsn, /report-type=delivery-status/);
  assert.match(dsn, /Final-Recipient: rfc822; nobody@hop2\.test/);
  assert.match(dsn, /Diagnostic-Code: smtp; 550/);
  assert.match(dsn, /Subject: lost/);
  assert.equal(hop1.relay!.stats.bounced, 1);
});

test('a 4xx is retried, and succeeds when the next hop recovers', async () => {
  hop2.setChaos({ recipient: { code: 451, probability: 1, times: 1 } });
  const done = next();
  await client.send({ from: 'ann@hop1.test', to: 'bob@hop2.test', subject: 'retry', text: 'y\r\n' });
  const outcome = await done;
  hop2.setChaos({});
  assert.equal(outcome.attempts, 2);
  assert.deepEqual(outcome.accepted, ['bob@hop2.test']);
});

test('a 4xx until the last attempt becomes a bounce; a local recipient beside it is delivered at once', async () => {
  hop2.setChaos({ recipient: { code: 451, probability: 1 } });
  const annBefore = inbox(store1, 'ann').length;
  const done = next();
  await client.send({ from: 'ann@hop1.test', to: ['bob@hop2.test', 'ann@hop1.test'], subject: 'mixed', text: 'z\r\n' });
  const outcome = await done;
  hop2.setChaos({});
  assert.equal(outcome.attempts, 3);
  assert.deepEqual(outcome.bounced.map((b) => b.code), [451]);
  // ann's copy, then the bounce.
  assert.equal(inbox(store1, 'ann').length, annBefore + 2);
  assert.match(inbox(store1, 'ann').at(-1)!.raw.toString('utf8'), /Status: 4\.0\.0/);
});

test('no open relay: a foreign sender to a foreign domain is refused; bad relay options are refused at start', async () => {
  await assert.rejects(client.send({ from: 'eve@elsewhere.test', to: 'bob@hop2.test', text: 'spam' }), (e: { responseCode?: number }) => e.responseCode === 550);
  await assert.rejects(startSmtpServer({ store: store1, relay: { port: hop2.port, maxAttempts: 0 } }), /maxAttempts/);
});

test('a full relay queue answers 452 at the end of DATA; closing drops what waits for a retry', async () => {
  // The next hop is a port nothing listens on: the first message waits for its retry, the second finds the queue full.
  const dead = await startSmtpServer({ store: store2 });
  const deadPort = dead.port;
  await dead.close();
  const busy = await startSmtpServer({ store: store1, relay: { port: deadPort, retryDelayMs: 60_000, maxQueued: 1 } });
  const c = await createSmtpClient({ port: busy.port });
  try {
    const first = await c.send({ from: 'ann@hop1.test', to: 'bob@hop2.test', text: 'one' });
    assert.match(first.response, /^250/);
    await assert.rejects(c.send({ from: 'ann@hop1.test', to: 'bob@hop2.test', text: 'two' }), (e: { responseCode?: number }) => e.responseCode === 452);
    assert.equal(busy.relay!.size, 1);
  } finally {
    c.close();
    const done = once(busy.relay!, 'done');
    await busy.close();
    const [outcome] = (await done) as [RelayOutcome];
    assert.deepEqual(outcome.bounced, []);
  }
});
