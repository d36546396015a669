/**
 * The order service of the event-driven lab, as a process of its own so the lab can see it die: it stores each order
 * in PostgreSQL and publishes OrderPlaced to the broker's native TCP door.
 *   node [--import tsx] _order-service.(ts|js) <pg port> <broker url> <direct|outbox> <first> <last> <crash point> <crash at>
 * direct: COMMIT the order, then publish (the dual write).
 * outbox: the order and its event row in one transaction; a relay publishes unpublished rows (msgId = the row's id,
 *         so a republish after a crash is deduplicated by the broker) and then marks them; at start it drains what a
 *         previous run left.
 * crash point: 'after-commit' (the order is stored, its event not yet published) or 'after-publish' (outbox: published,
 * not yet marked) or 'none'; at order <crash at> the process SIGKILLs itself there, as a crash would.
 * Prints one line per step: `committed N`, `published N duplicate=true|false`, `ready`.
 */
import pg from 'pg';
import { connectPubsub } from '../clients/pubsub.ts';

const [pgPort, url, mode, first, last, crashPoint, crashAt] = process.argv.slice(2) as [string, string, 'direct' | 'outbox', string, string, string, string];
const db = new pg.Client({ host: '127.0.0.1', port: Number(pgPort), user: 'wirelab', database: 'postgres' });
db.on('error', () => undefined);
await db.connect();
const broker = await connectPubsub({ url });
const topic = `${mode}.orders.placed`;
const die = (point: string, n: number): void => {
  if (crashPoint === point && n === Number(crashAt)) process.kill(process.pid, 'SIGKILL');
};

async function relay(): Promise<void> {
  const rows = await db.query('SELECT id, order_id, payload FROM outbox WHERE published_at IS NULL ORDER BY id');
  for (const row of rows.rows as Array<{ id: number; order_id: number; payload: string }>) {
    const ack = await broker.publish(topic, row.payload, { msgId: `outbox-${row.id}`, acks: 1 });
    process.stdout.write(`published ${row.order_id} duplicate=${ack?.duplicate === true}\n`);
    die('after-publish', row.order_id);
    await db.query('UPDATE outbox SET published_at = clock_timestamp() WHERE id = $1', [row.id]);
  }
}

if (mode === 'outbox') await relay();
process.stdout.write('ready\n');
for (let n = Number(first); n <= Number(last); n++) {
  const event = JSON.stringify({ type: 'OrderPlaced', orderId: n, amount: 10 * n });
  await db.query('BEGIN');
  await db.query('INSERT INTO orders (id, amount) VALUES ($1, $2)', [n, 10 * n]);
  if (mode === 'outbox') await db.query('INSERT INTO outbox (order_id, payload) VALUES ($1, $2)', [n, event]);
  await db.query('COMMIT');
  process.stdout.write(`committed ${n}\n`);
  die('after-commit', n);
  if (mode === 'outbox') {
    await relay();
  } else {
    const ack = await broker.publish(topic, event, { acks: 1 });
    process.stdout.write(`published ${n} duplicate=${ack?.duplicate === true}\n`);
  }
}
await broker.close();
await db.end();
