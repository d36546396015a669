/**
 * The course's "Pub/Sub vs other messaging technologies" and "Pub/Sub offers", each measured on the same small
 * workload: a queue (one consumer per message) vs pub/sub (every subscriber); a log a late subscriber can replay vs
 * fire-and-forget (only the future); a WebSocket (two-way, one peer) vs a topic (one-way, many, publisher blind to
 * them); an HTTP call (the caller waits) vs a publish (returns at once); then decoupling, a subscriber failing while
 * the others go on, and routing by subject done by the broker.
 */
import { createHttpClient } from '../clients/http.ts';
import { connectWs } from '../clients/ws.ts';
import { createBroker } from '../pubsub/broker/index.ts';
import type { Broker, Message, Session, SubscribeInput } from '../pubsub/broker/types.ts';
import { json, startHttpServer } from '../servers/http/index.ts';
import { startWsServer } from '../servers/ws/index.ts';
import { defineLab } from '../core/lab/index.ts';
import { waitFor } from './_pubsub.ts';
import { sleep } from '../core/time.ts';
import { r2 } from './_stats.ts';

const N = 12;
const WORK_MS = 150;

/** Waits until `f()` holds, at most `ms` (false when it did not). */
const until = (f: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> => waitFor(f, ms, 5);

/** n sessions subscribed with `input`; each counts what it got. */
async function members(broker: Broker, n: number, input: SubscribeInput, name: string): Promise<{ got: number[]; sessions: Session[] }> {
  const got = new Array<number>(n).fill(0);
  const sessions: Session[] = [];
  for (let i = 0; i < n; i++) {
    const s = await broker.connect({ door: 'internal', peer: `${name}-${i + 1}`, tls: false });
    await s.subscribe(input, (m: Message) => {
      got[i]!++;
      if (m.deliveryId) s.ack(m.deliveryId);
      return true;
    });
    sessions.push(s);
  }
  return { got, sessions };
}

export default defineLab({
  id: 'pubsub-vs-others',
  title: 'Pub/sub next to a queue, a log, a WebSocket and an HTTP call',
  concept: 'Pub/sub gives every subscriber each message, keeps the publisher blind to who listens and never makes it wait; a queue gives each message to one consumer, a log lets latecomers replay, a WebSocket is a two-way line to one peer, HTTP makes the caller wait.',
  protocols: ['pubsub', 'ws', 'http'],
  timeoutMs: 60_000,
  async run(ctx) {
    const broker = await createBroker({ tracer: ctx.tracer });
    ctx.defer(() => broker.close());
    const producer = await broker.connect({ door: 'internal', peer: 'producer', tls: false });
    const publish = async (topic: string, i: number): Promise<void> => void (await producer.publish({ topic, payload: Buffer.from(String(i)), acks: 1 }));

    // 1. Queue vs pub/sub: the same 12 messages to 3 consumers.
    const queue = await members(broker, 3, { pattern: 'parcels', group: { name: 'delivery-boys', mode: 'queue' }, ack: 'manual' }, 'queue');
    const fan = await members(broker, 3, { pattern: 'news', ack: 'none' }, 'listener');
    for (let i = 0; i < N; i++) {
      await publish('parcels', i);
      await publish('news', i);
    }
    await until(() => queue.got.reduce((a, b) => a + b, 0) === N && fan.got.every((g) => g === N));
    ctx.table(`${N} messages, 3 consumers`, ['model', 'per consumer', 'deliveries in all'], [
      ['message queue (queue group)', queue.got.join(' / '), queue.got.reduce((a, b) => a + b, 0)],
      ['pub/sub (3 subscribers)', fan.got.join(' / '), fan.got.reduce((a, b) => a + b, 0)],
    ]);
    ctx.claim('a queue gave each message to exactly one consumer ("one parcel, one delivery boy"), spread over all three', queue.got.reduce((a, b) => a + b, 0) === N && queue.got.every((g) => g > 0), queue.got.join(' / '));
    ctx.claim('pub/sub gave every message to every subscriber ("the news on a loudspeaker")', fan.got.every((g) => g === N), fan.got.join(' / '));

    // 2. A log (Kafka's model) vs fire-and-forget: a subscriber that joins after the fact.
    for (let i = 0; i < N; i++) await publish('cctv', i);
    const late = await members(broker, 1, { pattern: 'cctv', ack: 'none', start: { kind: 'earliest' } }, 'replayer');
    const bell = await members(broker, 1, { pattern: 'cctv', ack: 'none', start: { kind: 'new' } }, 'alerted');
    await until(() => late.got[0] === N);
    await publish('cctv', N);
    await until(() => late.got[0] === N + 1 && bell.got[0] === 1);
    ctx.table(`a subscriber joining after ${N} messages, then 1 more`, ['subscriber', 'past messages seen', 'new messages seen'], [
      ['reads the log from the start (Kafka-style: "the CCTV recording")', late.got[0]! - 1, 1],
      ['takes only what comes next (fire-and-forget: "the bell rang")', bell.got[0]! - 1, bell.got[0]! >= 1 ? 1 : 0],
    ]);
    ctx.claim('the late subscriber on the log replayed the whole past; the fire-and-forget one saw only the future', late.got[0] === N + 1 && bell.got[0] === 1, `${late.got[0]} vs ${bell.got[0]} messages`);

    // 3. A WebSocket: two-way with one peer; a topic: one publish, many subscribers, none known to the publisher.
    let serverGot = 0;
    const ws = await ctx.start(startWsServer({
      tracer: ctx.tracer,
      builtinRoutes: false,
      paths: {
        '/talk': (sock) => {
          sock.on('message', () => {
            serverGot++;
            sock.send('reply');
          });
          let pushes = 0;
          const timer = setInterval(() => (pushes++ < 5 ? sock.send(`push ${pushes}`) : clearInterval(timer)), 10);
          sock.on('close', () => clearInterval(timer));
        },
      },
    }));
    const client = await connectWs({ url: `ws://127.0.0.1:${ws.port}/talk`, tracer: ctx.tracer });
    const received: string[] = [];
    for (let i = 0; i < 5; i++) {
      client.send(`hello ${i}`);
      await sleep(12);
    }
    for (let i = 0; i < 10; i++) received.push((await client.next()).data.toString());
    await client.close();
    const pushed = received.filter((m) => m.startsWith('push')).length;
    const before = broker.stats();
    const many = await members(broker, 5, { pattern: 'announcements', ack: 'none' }, 'student');
    const ack = await producer.publish({ topic: 'announcements', payload: Buffer.from('exam on monday'), acks: 1 });
    await until(() => many.got.every((g) => g === 1));
    const deliveries = broker.stats().delivered - before.delivered;
    ctx.table('one line vs one topic', ['', 'sent by the client / publisher', 'sent to it', 'who it reaches'], [
      ['WebSocket /talk', `5 messages`, `${received.length - pushed} replies + ${pushed} pushes the server sent unasked`, '1 peer: the server at the other end'],
      ['topic "announcements"', '1 publish', `its ack only (offset ${ack.offset}; no list of receivers)`, `${many.got.filter((g) => g === 1).length} subscribers (${deliveries} deliveries)`],
    ]);
    ctx.claim('the WebSocket carried both directions on one connection: the server answered and also pushed unasked', serverGot === 5 && pushed === 5 && received.length === 10, `server got ${serverGot}, client got ${received.length - pushed} replies and ${pushed} pushes`);
    ctx.claim('one publish reached all 5 subscribers, and what came back to the publisher was an ack that names none of them', many.got.every((g) => g === 1) && !('subscribers' in ack), `${deliveries} deliveries; ack fields: ${Object.keys(ack).join(', ')}`);

    // 4. HTTP: the caller waits for the work; a publish returns when the broker has the message.
    const http = await ctx.start(startHttpServer({
      tracer: ctx.tracer,
      playground: false,
      routes: [(r) => r.add('POST', '/orders', async (c) => {
        await sleep(WORK_MS);
        json(c, 201, { status: 'processed' });
      })],
    }));
    const caller = await createHttpClient({ tracer: ctx.tracer });
    ctx.defer(() => caller.close());
    let t = performance.now();
    await caller.request(`${http.url}/orders`, { method: 'POST', body: '{}' });
    const httpWait = performance.now() - t;
    let done = 0;
    const worker = await broker.connect({ door: 'internal', peer: 'slow-worker', tls: false });
    await worker.subscribe({ pattern: 'orders.slow', ack: 'manual' }, (m) => {
      void sleep(WORK_MS).then(() => {
        done = performance.now();
        worker.ack(m.deliveryId!);
      });
      return true;
    });
    t = performance.now();
    await producer.publish({ topic: 'orders.slow', payload: Buffer.from('{}'), acks: 1 });
    const publishWait = performance.now() - t;
    await until(() => done > 0);
    ctx.table(`the same ${WORK_MS} ms of work behind each`, ['call', 'the caller waited ms', 'the work finished ms after the call'], [
      ['HTTP POST /orders (request/response)', r2(httpWait), r2(httpWait)],
      ['publish to orders.slow (acks=1)', r2(publishWait), r2(done - t)],
    ]);
    ctx.claim(`the HTTP caller waited for the work (≥ ${WORK_MS} ms); the publisher was free long before the work was done`, httpWait >= WORK_MS && publishWait < WORK_MS && done - t >= WORK_MS,
      `HTTP ${r2(httpWait)} ms; publish ${r2(publishWait)} ms, work done ${r2(done - t)} ms after it`);

    // 5. What pub/sub offers: a failing subscriber does not stop the others; the broker routes by subject.
    const three = await members(broker, 3, { pattern: 'prices', ack: 'none' }, 'app');
    for (let i = 0; i < 5; i++) await publish('prices', i);
    await until(() => three.got.every((g) => g === 5));
    await three.sessions[1]!.close('crashed');
    for (let i = 5; i < 10; i++) await publish('prices', i);
    await until(() => three.got[0] === 10 && three.got[2] === 10);
    ctx.claim('"If one service fails, others still continue": with subscriber 2 gone, 1 and 3 got every later message and the publisher never noticed', three.got[0] === 10 && three.got[2] === 10 && three.got[1] === 5,
      `got ${three.got.join(' / ')}`);
    const eu = await members(broker, 1, { pattern: 'orders.*.eu', ack: 'none' }, 'eu');
    const all = await members(broker, 1, { pattern: 'orders.>', ack: 'none' }, 'all');
    for (const topic of ['orders.books.eu', 'orders.books.us', 'orders.toys.eu', 'orders.toys.asia']) await publish(topic, 0);
    await until(() => all.got[0]! >= 4);
    await sleep(20);
    ctx.table('routing by subject, done by the broker', ['subscription', 'messages (of 4: books.eu, books.us, toys.eu, toys.asia)'], [
      ['orders.*.eu', eu.got[0]!],
      ['orders.>', all.got[0]!],
    ]);
    ctx.claim('"Complex message routing: central broker handles delivery": each subscriber got exactly what its pattern names, the publisher named only a topic', eu.got[0] === 2 && all.got[0] === 4, `orders.*.eu ${eu.got[0]}, orders.> ${all.got[0]}`);
    ctx.note('The drawbacks (order across partitions, loss without acks, duplicates, delay, debugging) are shown by the mq-problems and delivery-semantics labs; `wirelab lineage` answers "where did my message go".');
  },
});
