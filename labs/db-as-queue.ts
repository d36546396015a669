/**
 * The course's "Database as a Message Queue" on a real PostgreSQL: the five steps with polling workers S1-S3, the
 * seed's drawbacks measured (task 123 taken twice while it is slow, the read load polling costs and the latency it
 * adds, rows and pages left for a manual clean-up), then the database's own remedies (FOR UPDATE SKIP LOCKED,
 * LISTEN/NOTIFY) and wirelab's broker pushing the same tasks to a queue group.
 */
import type pg from 'pg';
import { createBroker } from '../pubsub/broker/index.ts';
import { defineLab } from '../core/lab/index.ts';
import type { LabContext } from '../core/lab/types.ts';
import { sleep } from '../core/time.ts';
import { postgresBin, startPostgres, type Postgres } from './_postgres.ts';
import { r2, summarize } from './_stats.ts';

const WORKERS = ['S1', 'S2', 'S3'];
/** The seed's S2 spends 50 s on task 123; here it takes this long, the other tasks SHORT_MS. */
const SLOW_MS = 400;
const SHORT_MS = 5;
const TASKS = 12;
const FIRST_ID = 120;
const SLOW_ID = 123;
/** Polling intervals compared, and how long each runs with tasks arriving. */
const INTERVALS = [10, 100, 500];
const WINDOW_MS = 700;
const WINDOW_TASKS = 14;
const JUNK_ROWS = 20_000;

type Strategy = 'naive' | 'skip-locked' | 'listen';

interface RunResult {
  /** Statements the server ran for the workers, by its own count (pg_stat_statements: SELECT, UPDATE, INSERT, BEGIN, COMMIT...). */
  queries: number;
  /** Picks the server ran (the SELECT of step 3, by its own count), and those that found no pending row. */
  polls: number;
  emptyPolls: number;
  /** Statements the server ran after the last task was done (the idle tail of the run), and how long that tail was. */
  idleQueries: number;
  idleMs: number;
  /** Task id -> ms from its INSERT returning to a worker having it. */
  pickupMs: Map<number, number>;
  /** Worker -> tasks it processed. */
  byWorker: Map<string, number>;
  /** The database's CPU (postmaster + backends) during the run, ms. */
  dbCpuMs: number;
  wallMs: number;
}

const SCHEMA = `
  DROP TABLE IF EXISTS messages, work_log;
  CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
  CREATE TABLE messages (id int PRIMARY KEY, body text NOT NULL, status text NOT NULL DEFAULT 'pending');
  CREATE TABLE work_log (id serial PRIMARY KEY, task_id int NOT NULL, worker text NOT NULL, finished_at timestamptz);
`;

/** Producer M (step 1) and workers S1-S3 (steps 2-4) running one strategy until every task is done. */
async function runQueue(pgsql: Postgres, workers: pg.Client[], producer: pg.Client, opts: {
  strategy: Strategy; intervalMs: number; ids: number[]; paceMs: number; slow?: number; signal: AbortSignal;
}): Promise<RunResult> {
  await producer.query(SCHEMA);
  const result: RunResult = { queries: 0, polls: 0, emptyPolls: 0, idleQueries: 0, idleMs: 0, pickupMs: new Map(), byWorker: new Map(), dbCpuMs: 0, wallMs: 0 };
  const insertedAt = new Map<number, number>();
  const remaining = new Set(opts.ids);
  let stop = false;
  const q = (c: pg.Client, text: string, values?: unknown[]): Promise<pg.QueryResult> => c.query(text, values);
  /** What the server counted for the workers' user since the last reset (the producer's statements are excluded by a marker). */
  const serverCount = async (like = '%'): Promise<number> =>
    (await producer.query("/*M*/ SELECT coalesce(sum(calls), 0)::int AS n FROM pg_stat_statements WHERE query NOT LIKE '%/*M*/%' AND query LIKE $1", [like])).rows[0].n as number;
  /** Step 4: the side effect (one work_log row per processing, so duplicates are counted by the database), then done. */
  const process = async (c: pg.Client, name: string, id: number): Promise<void> => {
    const t = insertedAt.get(id);
    if (t !== undefined && !result.pickupMs.has(id)) result.pickupMs.set(id, performance.now() - t);
    const log = await q(c, 'INSERT INTO work_log (task_id, worker) VALUES ($1, $2) RETURNING id', [id, name]);
    await sleep(id === opts.slow ? SLOW_MS : SHORT_MS);
    await q(c, 'UPDATE work_log SET finished_at = clock_timestamp() WHERE id = $1', [log.rows[0].id]);
    await q(c, "UPDATE messages SET status = 'done' WHERE id = $1", [id]);
    result.byWorker.set(name, (result.byWorker.get(name) ?? 0) + 1);
    remaining.delete(id);
  };
  /** One pick: true if a task was processed. */
  const pickOne = async (c: pg.Client, name: string): Promise<boolean> => {
    if (opts.strategy === 'naive') {
      // Step 3 as the seed writes it: read a pending row, work, then mark it done. Nothing stops a second reader.
      const r = await q(c, "SELECT id FROM messages WHERE status = 'pending' ORDER BY id LIMIT 1");
      if (r.rowCount === 0) return false;
      await process(c, name, r.rows[0].id as number);
      return true;
    }
    // The database's remedy: the row is locked by the transaction that took it; other workers skip it.
    await q(c, 'BEGIN');
    const r = await q(c, "SELECT id FROM messages WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED");
    if (r.rowCount === 0) {
      await q(c, 'COMMIT');
      return false;
    }
    await process(c, name, r.rows[0].id as number);
    await q(c, 'COMMIT');
    return true;
  };
  const worker = async (c: pg.Client, name: string): Promise<void> => {
    if (opts.strategy === 'listen') {
      // No timer: a notification wakes the worker, which then drains what is pending.
      let wake: (() => void) | undefined;
      let pending = false;
      const onNote = (): void => {
        pending = true;
        wake?.();
      };
      c.on('notification', onNote);
      await q(c, 'LISTEN tasks');
      while (!stop) {
        if (!pending) await new Promise<void>((r) => (wake = r));
        pending = false;
        while (!stop && (await pickOne(c, name)));
      }
      c.off('notification', onNote);
      await c.query('UNLISTEN tasks');
      return;
    }
    while (!stop && !opts.signal.aborted) {
      if (await pickOne(c, name)) continue;
      result.emptyPolls++;
      await sleep(opts.intervalMs);
    }
  };
  await producer.query('SELECT pg_stat_statements_reset() /*M*/');
  const cpu0 = pgsql.cpuMs();
  const t0 = performance.now();
  const running = workers.map((c, i) => worker(c, WORKERS[i]!));
  for (const id of opts.ids) {
    // Step 1: producer M inserts a row (and, for LISTEN/NOTIFY, notifies in the same statement).
    const sql = opts.strategy === 'listen'
      ? "WITH t AS (INSERT INTO messages (id, body) VALUES ($1, 'task') RETURNING id) SELECT pg_notify('tasks', id::text) FROM t /*M*/"
      : "INSERT INTO messages (id, body) VALUES ($1, 'task') /*M*/";
    // Timed from before the INSERT: a LISTENing worker may have the task before the producer has its reply.
    insertedAt.set(id, performance.now());
    await producer.query(sql, [id]);
    await sleep(opts.paceMs);
  }
  const deadline = performance.now() + 10_000;
  while (remaining.size > 0 && performance.now() < deadline && !opts.signal.aborted) await sleep(5);
  // Let the workers run to the end of the window so the idle cost is in the figures too.
  const idleFrom = { t: performance.now(), queries: await serverCount() };
  while (performance.now() - t0 < WINDOW_MS) await sleep(5);
  const end = await serverCount();
  result.idleQueries = end - idleFrom.queries;
  result.idleMs = performance.now() - idleFrom.t;
  result.queries = end;
  result.polls = await serverCount('SELECT id FROM messages WHERE status%');
  stop = true;
  await producer.query("SELECT pg_notify('tasks', 'stop') /*M*/");
  await Promise.all(running);
  result.wallMs = performance.now() - t0;
  result.dbCpuMs = pgsql.cpuMs() - cpu0;
  return result;
}

/** Processings per task, read back from the database's own work_log. */
async function timesProcessed(c: pg.Client): Promise<Map<number, number>> {
  const r = await c.query('SELECT task_id, count(*)::int AS n FROM work_log GROUP BY task_id');
  return new Map(r.rows.map((row) => [row.task_id as number, row.n as number]));
}

async function doneOrder(c: pg.Client): Promise<number[]> {
  const r = await c.query('SELECT task_id FROM work_log WHERE finished_at IS NOT NULL ORDER BY finished_at');
  return r.rows.map((row) => row.task_id as number);
}

/** The same tasks pushed by wirelab's broker to a queue group of three (one unacked message per member). */
async function brokerRun(ctx: LabContext, ids: number[], paceMs: number): Promise<{ pickupMs: number[]; processed: Map<number, number>; wallMs: number }> {
  const broker = await createBroker({ tracer: ctx.tracer });
  ctx.defer(() => broker.close());
  const producer = await broker.connect({ door: 'internal', peer: 'M', tls: false });
  const published = new Map<number, number>();
  const pickupMs: number[] = [];
  const processed = new Map<number, number>();
  let done = 0;
  for (const name of WORKERS) {
    const session = await broker.connect({ door: 'internal', peer: name, tls: false });
    await session.subscribe({ pattern: 'tasks', group: { name: 'workers', mode: 'queue' }, ack: 'manual', maxAckPending: 1 }, (m) => {
      const id = Number(m.payload.toString());
      pickupMs.push(performance.now() - published.get(id)!);
      processed.set(id, (processed.get(id) ?? 0) + 1);
      void sleep(SHORT_MS).then(() => {
        done++;
        session.ack(m.deliveryId!);
      });
      return true;
    });
  }
  const t0 = performance.now();
  for (const id of ids) {
    published.set(id, performance.now());
    await producer.publish({ topic: 'tasks', payload: Buffer.from(String(id)), acks: 1 });
    await sleep(paceMs);
  }
  const deadline = performance.now() + 10_000;
  while (done < ids.length && performance.now() < deadline) await sleep(5);
  return { pickupMs, processed, wallMs: performance.now() - t0 };
}

export default defineLab({
  id: 'db-as-queue',
  title: 'A database as a message queue: polling workers on PostgreSQL, the remedies, and a broker',
  concept: 'A table polled by workers works, but costs reads while idle, adds up to an interval of latency, hands a slow task to two workers and leaves rows to clean up; SKIP LOCKED, LISTEN/NOTIFY or a broker remove each cost.',
  protocols: ['postgresql', 'pubsub'],
  timeoutMs: 60_000,
  async run(ctx) {
    const ids = Array.from({ length: TASKS }, (_, i) => FIRST_ID + i);
    const windowIds = (k: number): number[] => Array.from({ length: WINDOW_TASKS }, (_, i) => 1000 * (k + 1) + i);
    const pace = WINDOW_MS / 2 / WINDOW_TASKS;

    if (!postgresBin()) {
      if (process.env.CI === 'true') throw new Error('CI=true and PostgreSQL is missing (Debian package postgresql)');
      ctx.note('PostgreSQL is not installed here (Debian package postgresql; `npm run peers` installs it): the database rows are not shown, only the broker\'s.');
      const b = await brokerRun(ctx, ids, 20);
      const once = [...b.processed.values()].every((n) => n === 1) && b.processed.size === ids.length;
      ctx.claim('the broker handed each task to exactly one worker of the queue group', once, `${b.processed.size} tasks, processings ${[...b.processed.values()].join(',')}`);
      return;
    }

    const pgsql = await startPostgres();
    ctx.defer(() => pgsql.stop());
    const producer = await pgsql.connect();
    const workers = await Promise.all(WORKERS.map(() => pgsql.connect()));
    const version = (await producer.query('SHOW server_version')).rows[0].server_version as string;
    ctx.note(`PostgreSQL ${version} started for this lab on 127.0.0.1:${pgsql.port} (PID ${pgsql.pid}, fsync off: durability is not what this lab shows).`);

    // 1. The seed's five steps, with task 123 taking long (50 s in the seed, ${SLOW_MS} ms here).
    const naive = await runQueue(pgsql, workers, producer, { strategy: 'naive', intervalMs: 50, ids, paceMs: 20, slow: SLOW_ID, signal: ctx.signal });
    const naiveCounts = await timesProcessed(producer);
    const naiveOrder = await doneOrder(producer);
    const locked = await runQueue(pgsql, workers, producer, { strategy: 'skip-locked', intervalMs: 50, ids, paceMs: 20, slow: SLOW_ID, signal: ctx.signal });
    const lockedCounts = await timesProcessed(producer);
    const lockedOrder = await doneOrder(producer);
    const allDone = async (): Promise<number> => (await producer.query("SELECT count(*)::int AS n FROM messages WHERE status = 'done'")).rows[0].n as number;
    const doneAfterLocked = await allDone();
    const dupes = (m: Map<number, number>): number => [...m.values()].reduce((s, n) => s + (n - 1), 0);
    /** Tasks after 123 (by id) finished before 123 first did: the queue did not wait behind the slow task. */
    const passedSlow = (order: number[]): number => order.slice(0, order.indexOf(SLOW_ID)).filter((id) => id > SLOW_ID).length;
    ctx.table(`steps 1-5: M inserts ${TASKS} tasks (${FIRST_ID}-${FIRST_ID + TASKS - 1}) into "messages"; S1-S3 poll every 50 ms, pick status='pending', process, set 'done'`, [
      'workers pick with', 'task 123 processed', 'processings (tasks)', 'duplicates', 'tasks > 123 done before 123', 'per worker', 'statements the DB ran', 'empty polls',
    ], [
      ['SELECT ... WHERE status=\'pending\', then UPDATE (the seed)', naiveCounts.get(SLOW_ID) ?? 0, `${[...naiveCounts.values()].reduce((a, b) => a + b, 0)} (${naiveCounts.size})`, dupes(naiveCounts), passedSlow(naiveOrder), WORKERS.map((w) => `${w}:${naive.byWorker.get(w) ?? 0}`).join(' '), naive.queries, naive.emptyPolls],
      ['SELECT ... FOR UPDATE SKIP LOCKED in a transaction', lockedCounts.get(SLOW_ID) ?? 0, `${[...lockedCounts.values()].reduce((a, b) => a + b, 0)} (${lockedCounts.size})`, dupes(lockedCounts), passedSlow(lockedOrder), WORKERS.map((w) => `${w}:${locked.byWorker.get(w) ?? 0}`).join(' '), locked.queries, locked.emptyPolls],
    ]);
    ctx.claim(`with the seed's steps, task ${SLOW_ID} was processed by more than one worker: it stays 'pending' while S-n works on it, so the next poll takes it again`,
      (naiveCounts.get(SLOW_ID) ?? 0) >= 2, `processed ${naiveCounts.get(SLOW_ID) ?? 0} times (work_log)`);
    ctx.claim('with FOR UPDATE SKIP LOCKED, every task was processed exactly once', lockedCounts.size === TASKS && dupes(lockedCounts) === 0, `${lockedCounts.size} tasks, ${dupes(lockedCounts)} duplicates`);
    ctx.claim(`with SKIP LOCKED the other workers went past the slow task ${SLOW_ID} instead of taking it again`, passedSlow(lockedOrder) > passedSlow(naiveOrder),
      `tasks after ${SLOW_ID} done before it: ${passedSlow(lockedOrder)} vs ${passedSlow(naiveOrder)} with the seed's steps`);

    // 2. Polling intervals vs push: the read load polling costs and the latency it adds, with tasks arriving.
    const rows: Array<Array<string | number>> = [];
    const polls: Array<{ interval: number; r: RunResult; p50: number }> = [];
    for (const [k, interval] of INTERVALS.entries()) {
      const r = await runQueue(pgsql, workers, producer, { strategy: 'skip-locked', intervalMs: interval, ids: windowIds(k), paceMs: pace, signal: ctx.signal });
      const p50 = summarize([...r.pickupMs.values()]).p50;
      polls.push({ interval, r, p50 });
      rows.push([`poll every ${interval} ms`, r.queries, r.emptyPolls, `${r.idleQueries} in ${Math.round(r.idleMs)} ms`, r2(r.dbCpuMs), r2(p50), r.pickupMs.size]);
    }
    const listen = await runQueue(pgsql, workers, producer, { strategy: 'listen', intervalMs: 0, ids: windowIds(INTERVALS.length), paceMs: pace, signal: ctx.signal });
    const listenP50 = summarize([...listen.pickupMs.values()]).p50;
    rows.push(['LISTEN / NOTIFY (no timer)', listen.queries, listen.emptyPolls, `${listen.idleQueries} in ${Math.round(listen.idleMs)} ms`, r2(listen.dbCpuMs), r2(listenP50), listen.pickupMs.size]);
    const cpuBroker0 = pgsql.cpuMs();
    const pushed = await brokerRun(ctx, windowIds(INTERVALS.length + 1), pace);
    const brokerDbCpu = pgsql.cpuMs() - cpuBroker0;
    const brokerP50 = summarize(pushed.pickupMs).p50;
    rows.push(['wirelab broker, queue group of 3 (push)', 0, 0, '0', r2(brokerDbCpu), r2(brokerP50), pushed.pickupMs.length]);
    ctx.table(`${WINDOW_TASKS} tasks arriving over ${WINDOW_MS / 2} ms, each run ≥ ${WINDOW_MS} ms, 3 workers (a processed task costs 6 queries: BEGIN, pick, log, finish, done, COMMIT)`, [
      'workers learn of work by', 'statements the DB ran', 'empty polls', 'statements while idle', 'DB CPU ms (10 ms ticks)', 'pickup p50 ms', 'tasks',
    ], rows);
    const fast = polls[0]!;
    const slow = polls[polls.length - 1]!;
    ctx.claim(`polling every ${fast.interval} ms made the database run over 2x the polling SELECTs of every ${slow.interval} ms, most of them finding nothing (the read load of a short interval)`,
      fast.r.polls > 2 * slow.r.polls && fast.r.emptyPolls > fast.r.pickupMs.size,
      `${fast.r.polls} vs ${slow.r.polls} polling SELECTs, ${fast.r.queries} vs ${slow.r.queries} statements in all (pg_stat_statements); ${fast.r.emptyPolls} polls found nothing, for ${fast.r.pickupMs.size} tasks`);
    ctx.claim(`a long interval delays every task: pickup p50 at ${slow.interval} ms is more than 3x that at ${fast.interval} ms`, slow.p50 > 3 * fast.p50, `${r2(slow.p50)} vs ${r2(fast.p50)} ms`);
    ctx.claim(`polling costs queries while there is no work: ${fast.interval} ms pollers kept the database busy after the last task`, fast.r.idleQueries > 0, `${fast.r.idleQueries} statements in ${Math.round(fast.r.idleMs)} ms idle`);
    ctx.claim('LISTEN/NOTIFY: not one statement while idle, and tasks picked up sooner than with 100 ms polling', listen.idleQueries === 0 && listen.pickupMs.size === WINDOW_TASKS && listenP50 < polls[1]!.p50,
      `${listen.idleQueries} statements in ${Math.round(listen.idleMs)} ms idle, ${listen.pickupMs.size} tasks, p50 ${r2(listenP50)} ms vs ${r2(polls[1]!.p50)} ms`);
    const brokerOnce = pushed.processed.size === WINDOW_TASKS && [...pushed.processed.values()].every((n) => n === 1);
    ctx.claim('the broker pushed every task to exactly one worker, with no query to the database and sooner than 100 ms polling', brokerOnce && brokerP50 < polls[1]!.p50,
      `${pushed.processed.size} tasks once each, p50 ${r2(brokerP50)} ms`);

    // 3. Manual clean-up: done rows stay, and deleting them does not give the space back.
    const doneRows = await allDone();
    await producer.query(`INSERT INTO messages (id, body, status) SELECT g, repeat('x', 100), 'done' FROM generate_series(100000, ${100000 + JUNK_ROWS - 1}) g`);
    const size = async (): Promise<number> => (await producer.query("SELECT pg_relation_size('messages')::int AS n")).rows[0].n as number;
    const full = await size();
    const deleted = (await producer.query("DELETE FROM messages WHERE status = 'done'")).rowCount ?? 0;
    const afterDelete = await size();
    await producer.query('VACUUM messages');
    const afterVacuum = await size();
    ctx.table('clean-up: processed rows are the application\'s to remove', ['moment', 'rows', 'table file bytes'], [
      ['after the last run (every task done)', doneRows, '-'],
      [`+ ${JUNK_ROWS} processed rows (a busier day)`, doneRows + JUNK_ROWS, full],
      ["DELETE FROM messages WHERE status = 'done'", 0, afterDelete],
      ['VACUUM messages', 0, afterVacuum],
    ]);
    ctx.claim('processed rows stay in the table until someone deletes them (no queue removes them for you)', doneAfterLocked === TASKS && doneRows === WINDOW_TASKS, `${doneRows} done rows left by the last run`);
    ctx.claim('DELETE gave no space back (the rows are dead, not gone); only VACUUM shrank the table file', deleted === doneRows + JUNK_ROWS && afterDelete === full && afterVacuum < full,
      `${full} B -> ${afterDelete} B after DELETE -> ${afterVacuum} B after VACUUM`);
    ctx.note('Not shown here: the seed\'s "scaling is difficult" (one primary takes every poll and every write; replicas do not help a queue that needs row locks).');
  },
});
