/**
 * The course's event-driven architecture (seed 001 "Event Driven Architecture", seed 000): the OrderPlaced chain
 * (order -> billing + inventory -> email), a billing outage the log rides out, an analytics service added later that
 * rebuilds its state by replaying, the state at event n (time travel), the outbox pattern against the dual write (the
 * order service killed between its commit and its publish, on a real PostgreSQL), and an event next to a command.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createBroker } from '../pubsub/broker/index.ts';
import type { Broker, Message, Session } from '../pubsub/broker/types.ts';
import { startPubsubTcpServer } from '../pubsub/doors/native/index.ts';
import { defineLab } from '../core/lab/index.ts';
import { waitFor } from './_pubsub.ts';
import type { LabContext } from '../core/lab/types.ts';
import { MODULE_EXT } from '../core/paths.ts';
import { postgresBin, startPostgres } from './_postgres.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVICE = MODULE_EXT === '.ts' ? ['--import', 'tsx', join(HERE, '_order-service.ts')] : [join(HERE, '_order-service.js')];

interface Step {
  t: number;
  service: string;
  event: string;
  order: number;
}

const json = (m: Message): Record<string, number> => JSON.parse(m.payload.toString('utf8')) as Record<string, number>;

/** Waits until `f()` holds, at most `ms` (false when it did not). */
const until = (f: () => boolean | Promise<boolean>, ms = 8000): Promise<boolean> => waitFor(f, ms, 5);

/** A service: a session, its subscriptions as a durable group named after it, and a handler that may publish. */
async function service(broker: Broker, name: string, patterns: string[], handle: (m: Message, s: Session) => Promise<void> | void): Promise<Session> {
  const session = await broker.connect({ door: 'internal', peer: name, tls: false });
  for (const pattern of patterns) {
    await session.subscribe({ pattern, group: { name: `${name}.${pattern}`, mode: 'queue' }, ack: 'manual', start: { kind: 'earliest' } }, (m) => {
      // A service stopped mid-handling (the outage below) cannot ack any more: the broker redelivers to the next member.
      void Promise.resolve(handle(m, session)).then(() => session.ack(m.deliveryId!)).catch(() => undefined);
      return true;
    });
  }
  return session;
}

/** Runs the order service process to its end (or its crash); its output lines. */
function runOrderService(ctx: LabContext, args: string[]): Promise<{ lines: string[]; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...SERVICE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let err = '';
    child.on('error', reject);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    // A bound for a hung child, not a timing claim: generous for a machine shared with other work.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    ctx.defer(() => child.exitCode === null && child.kill('SIGKILL'));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`order service exited ${code}: ${err.slice(-500)}`));
      else resolve({ lines, signal });
    });
  });
}

export default defineLab({
  id: 'event-driven',
  title: 'Event-driven services: a chain of events, an outage, a replay, the outbox',
  concept: 'Services react to events instead of calling each other: the log lets one be down and catch up, a new one rebuild its state from the past, and the outbox keeps the database and the events in step through a crash.',
  protocols: ['pubsub', 'postgresql'],
  timeoutMs: 90_000,
  async run(ctx) {
    const broker = await createBroker({ tracer: ctx.tracer });
    ctx.defer(() => broker.close());
    const t0 = performance.now();
    const steps: Step[] = [];
    const step = (service: string, event: string, order: number): void => void steps.push({ t: performance.now() - t0, service, event, order });

    // 1. The chain: the order service stores the order and publishes OrderPlaced; billing and inventory react and
    //    publish their own events; email waits for both (an aggregator) and confirms.
    const orders = new Map<number, number>();
    const liveRevenue: number[] = [];
    const lag = async (): Promise<number> => {
      const g = (await broker.groups()).find((x) => x.name === 'billing.orders.placed');
      return g ? g.partitions.reduce((sum, p) => sum + p.lag, 0) : -1;
    };
    const orderService = await broker.connect({ door: 'internal', peer: 'orders', tls: false });
    let placedCount = 0;
    const place = async (n: number): Promise<void> => {
      placedCount++;
      orders.set(n, 10 * n);
      liveRevenue.push([...orders.values()].reduce((a, b) => a + b, 0));
      step('orders', 'OrderPlaced', n);
      await orderService.publish({ topic: 'orders.placed', payload: Buffer.from(JSON.stringify({ orderId: n, amount: 10 * n })), headers: { correlation: `order-${n}` }, acks: 1 });
    };
    const invoiced = new Set<number>();
    const stocked = new Set<number>();
    const emailed = new Set<number>();
    let billingSession = await service(broker, 'billing', ['orders.placed'], async (m, s) => {
      const { orderId } = json(m);
      invoiced.add(orderId!);
      step('billing', 'InvoiceGenerated', orderId!);
      await s.publish({ topic: 'invoices.generated', payload: m.payload, headers: { correlation: `order-${orderId}`, causation: `orders.placed@${m.offset}` }, acks: 1 });
    });
    await service(broker, 'inventory', ['orders.placed'], async (m, s) => {
      const { orderId } = json(m);
      stocked.add(orderId!);
      step('inventory', 'StockUpdated', orderId!);
      await s.publish({ topic: 'stock.updated', payload: m.payload, headers: { correlation: `order-${orderId}`, causation: `orders.placed@${m.offset}` }, acks: 1 });
    });
    const halves = new Map<number, Set<string>>();
    await service(broker, 'email', ['invoices.generated', 'stock.updated'], async (m, s) => {
      const { orderId } = json(m);
      const seen = halves.get(orderId!) ?? new Set<string>();
      seen.add(m.topic);
      halves.set(orderId!, seen);
      if (seen.size === 2 && !emailed.has(orderId!)) {
        emailed.add(orderId!);
        step('email', 'ConfirmationSent', orderId!);
        await s.publish({ topic: 'emails.sent', payload: m.payload, headers: { correlation: `order-${orderId}` }, acks: 1 });
      }
    });
    for (let n = 1; n <= 3; n++) await place(n);
    await until(() => emailed.size === 3);
    const chain = steps.filter((s) => s.order <= 3);
    ctx.table('the OrderPlaced chain (3 orders), in the order it happened', ['ms', 'service', 'event', 'order'], chain.map((s) => [s.t.toFixed(1), s.service, s.event, s.order]));
    const inOrder = [1, 2, 3].every((n) => {
      const at = (svc: string): number => chain.find((s) => s.order === n && s.service === svc)?.t ?? NaN;
      return at('orders') <= at('billing') && at('orders') <= at('inventory') && Math.max(at('billing'), at('inventory')) <= at('email');
    });
    ctx.claim('each order set off the chain: billing and inventory reacted to OrderPlaced, email confirmed only after both of their events', emailed.size === 3 && inOrder, `${emailed.size}/3 confirmed, order of events ${inOrder ? 'as the chain says' : 'broken'}`);
    ctx.claim('the order service addressed no other service: one publish per order, and the broker brought it to both billing and inventory', placedCount === 3 && invoiced.size === 3 && stocked.size === 3,
      `${placedCount} publishes by the order service; billing got ${invoiced.size}, inventory ${stocked.size}`);

    // 2. Billing is down: its events wait in the log; inventory goes on; billing catches up when it returns.
    await until(async () => (await lag()) === 0); // billing's last ack is in: the outage starts clean
    await billingSession.close();
    for (let n = 4; n <= 8; n++) await place(n);
    await until(() => stocked.size === 8);
    const lagDuringOutage = await lag();
    const invoicedDuringOutage = invoiced.size;
    billingSession = await service(broker, 'billing', ['orders.placed'], async (m, s) => {
      const { orderId } = json(m);
      invoiced.add(orderId!);
      step('billing', 'InvoiceGenerated', orderId!);
      await s.publish({ topic: 'invoices.generated', payload: m.payload, headers: { correlation: `order-${orderId}`, causation: `orders.placed@${m.offset}` }, acks: 1 });
    });
    await until(() => invoiced.size === 8 && emailed.size === 8);
    ctx.table('billing down while orders 4-8 were placed', ['moment', 'billing lag (messages)', 'invoiced', 'stock updated', 'confirmed'], [
      ['billing down, 5 orders placed', lagDuringOutage, invoicedDuringOutage, stocked.size, 3],
      ['billing back', await lag(), invoiced.size, stocked.size, emailed.size],
    ]);
    ctx.claim('while billing was down its 5 events waited in the log (lag 5) and inventory went on with all of them', lagDuringOutage === 5 && invoicedDuringOutage === 3 && stocked.size === 8, `lag ${lagDuringOutage}, invoiced ${invoicedDuringOutage}, stock ${stocked.size}`);
    ctx.claim('billing caught up when it came back: nothing lost, every order confirmed', invoiced.size === 8 && emailed.size === 8 && (await lag()) === 0, `${invoiced.size} invoiced, ${emailed.size} confirmed`);

    // 3. A service added later rebuilds its state by replaying the log; 4. the state at any event n, replayed.
    let analyticsCount = 0;
    let analyticsRevenue = 0;
    await service(broker, 'analytics', ['orders.placed'], (m) => {
      analyticsCount++;
      analyticsRevenue += json(m).amount!;
    });
    await until(() => analyticsCount === 8);
    const revenue = [...orders.values()].reduce((a, b) => a + b, 0);
    ctx.claim('an analytics service added after 8 orders rebuilt the whole revenue by replaying OrderPlaced from offset 0, with no change to the order service', analyticsCount === 8 && analyticsRevenue === revenue,
      `${analyticsCount} events replayed, revenue ${analyticsRevenue} vs the order service's ${revenue}`);
    const records = await broker.engine.read('orders.placed', 0, 0, 100);
    const replayed = records.map((_, n) => records.slice(0, n + 1).reduce((sum, r) => sum + (JSON.parse(r.payload.toString()) as { amount: number }).amount, 0));
    ctx.table('time travel: the revenue after event n, replayed from the log vs recorded live', ['n', 'replayed', 'recorded live'], replayed.map((v, n) => [n + 1, v, liveRevenue[n] ?? '-']));
    ctx.claim('the state at every event n, replayed from the log, equals the state recorded when it happened', replayed.length === 8 && replayed.every((v, n) => v === liveRevenue[n]), `${replayed.length} points`);

    // 6. An event (what happened: every interested service) next to a command (what to do: one handler, a reply).
    const workers = new Map<string, number>();
    for (const w of ['mailer-1', 'mailer-2', 'mailer-3']) {
      const s = await broker.connect({ door: 'internal', peer: w, tls: false });
      await s.subscribe({ pattern: 'commands.send-email', group: { name: 'mailer', mode: 'queue' }, ack: 'manual' }, (m) => {
        workers.set(w, (workers.get(w) ?? 0) + 1);
        void s.publish({ topic: m.headers['reply-to']!, payload: Buffer.from(`sent by ${w}`), acks: 1 }).then(() => s.ack(m.deliveryId!));
        return true;
      });
    }
    const requester = await broker.connect({ door: 'internal', peer: 'checkout', tls: false });
    const replies: string[] = [];
    await requester.subscribe({ pattern: 'replies.checkout', ack: 'none' }, (m) => (replies.push(m.payload.toString()), true));
    await requester.publish({ topic: 'commands.send-email', payload: Buffer.from('{"to":"ana@example.test"}'), headers: { 'reply-to': 'replies.checkout' }, acks: 1 });
    await until(() => replies.length === 1);
    const beforeEvent = { invoiced: invoiced.size, stocked: stocked.size, analytics: analyticsCount };
    await place(9);
    await until(() => invoiced.size === 9 && stocked.size === 9 && analyticsCount === 9);
    ctx.table('event vs command (EDA vs message-driven)', ['message', 'says', 'handled by', 'sender'], [
      ['OrderPlaced (event)', 'what happened', `billing, inventory, analytics: ${invoiced.size - beforeEvent.invoiced + stocked.size - beforeEvent.stocked + analyticsCount - beforeEvent.analytics} of 3`, 'names no recipient, waits for nobody'],
      ['SendEmail (command)', 'what to do', `${[...workers.entries()].map(([w, n]) => `${w}: ${n}`).join(', ')}`, `waited for the reply: "${replies[0] ?? ''}"`],
    ]);
    ctx.claim('the event reached every interested service (3 groups); the command was done by exactly one of 3 workers, which replied to its sender', invoiced.size === 9 && stocked.size === 9 && analyticsCount === 9 && [...workers.values()].reduce((a, b) => a + b, 0) === 1 && replies.length === 1,
      `command handled ${[...workers.values()].reduce((a, b) => a + b, 0)} time(s), reply "${replies[0] ?? ''}"`);

    // 5. The outbox, on a real PostgreSQL: the order service killed between its commit and its publish.
    if (!postgresBin()) {
      if (process.env.CI === 'true') throw new Error('CI=true and PostgreSQL is missing (Debian package postgresql)');
      ctx.note('PostgreSQL is not installed here (Debian package postgresql; `npm run peers` installs it): the outbox rows are not shown.');
      return;
    }
    const pgsql = await startPostgres();
    ctx.defer(() => pgsql.stop());
    const db = await pgsql.connect();
    const door = await ctx.start(startPubsubTcpServer({ broker, host: '127.0.0.1', port: 0, tracer: ctx.tracer }));
    const url = `tcp://127.0.0.1:${door.port}`;
    const reset = async (mode: string): Promise<void> => {
      await db.query('DROP TABLE IF EXISTS orders, outbox; CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL); CREATE TABLE outbox (id serial PRIMARY KEY, order_id int NOT NULL, payload text NOT NULL, published_at timestamptz)');
      await broker.engine.deleteTopic(`${mode}.orders.placed`);
    };
    const tally = async (mode: string, runs: Array<{ lines: string[]; signal: NodeJS.Signals | null }>): Promise<{ stored: number; events: number; lost: number; dupes: number; reported: number; kills: number }> => {
      const stored = Number((await db.query('SELECT count(*)::int AS n FROM orders')).rows[0].n);
      const evs = (await broker.engine.read(`${mode}.orders.placed`, 0, 0, 100)).map((r) => (JSON.parse(r.payload.toString()) as { orderId: number }).orderId);
      const unique = new Set(evs);
      const lines = runs.flatMap((r) => r.lines);
      return { stored, events: evs.length, lost: stored - unique.size, dupes: evs.length - unique.size, reported: lines.filter((l) => l.endsWith('duplicate=true')).length, kills: runs.filter((r) => r.signal === 'SIGKILL').length };
    };
    const runService = (mode: string, from: number, to: number, crash: string, at: number): Promise<{ lines: string[]; signal: NodeJS.Signals | null }> =>
      runOrderService(ctx, [String(pgsql.port), url, mode, String(from), String(to), crash, String(at)]);
    // The dual write: orders 1-3, the process killed right after order 3's COMMIT.
    await reset('direct');
    const direct = await tally('direct', [await runService('direct', 1, 3, 'after-commit', 3)]);
    // The outbox: killed after order 2's COMMIT, restarted and killed after publishing order 4 (before marking it),
    // restarted again: each restart's relay first publishes what the last run left.
    await reset('outbox');
    const outbox = await tally('outbox', [await runService('outbox', 1, 5, 'after-commit', 2), await runService('outbox', 3, 5, 'after-publish', 4), await runService('outbox', 5, 5, 'none', 0)]);
    ctx.table('the order service (its own process, on PostgreSQL) SIGKILLed mid-order', ['how the service publishes', 'kills', 'orders in the DB', 'events in the log', 'orders without an event', 'events twice', 'broker said duplicate'], [
      ['dual write: COMMIT, then publish', `${direct.kills}: after the COMMIT of order 3`, direct.stored, direct.events, direct.lost, direct.dupes, direct.reported],
      ['outbox: order + event row in one transaction; a relay publishes (msgId = row id), then marks', `${outbox.kills}: after the COMMIT of 2; after publishing 4, before marking it`, outbox.stored, outbox.events, outbox.lost, outbox.dupes, outbox.reported],
    ]);
    ctx.claim('the dual write lost an event: order 3 is in the database, its OrderPlaced never left', direct.kills === 1 && direct.stored === 3 && direct.lost === 1, `${direct.stored} orders, ${direct.events} events`);
    ctx.claim('with the outbox, two crashes later every order has exactly one event: the relay published what a crash left, and its republish was deduplicated by the broker (msgId)',
      outbox.kills === 2 && outbox.stored === 5 && outbox.lost === 0 && outbox.dupes === 0 && outbox.reported === 1, `${outbox.stored} orders, ${outbox.events} events, ${outbox.reported} republish refused as a duplicate`);
  },
});
