/**
 * Shared helpers of the pub/sub labs (broker-failover, acks-and-durability; mqlabs' labs may add theirs at the end):
 * whether nats-server is here, a broker process to kill by PID, a publisher that keeps every id it sent and every one
 * acknowledged, and what a topic holds. Files starting with _ are not labs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PubsubClient } from '../clients/pubsub.ts';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import type { LabContext } from '../core/lab/index.ts';
import { MODULE_EXT } from '../core/paths.ts';
import type { Acks, Engine } from '../pubsub/engines/types.ts';
import type { FsyncPolicy } from '../pubsub/log/types.ts';
import { summarize } from './_stats.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

export const NATS_PEER = 'nats-server (Debian package nats-server; npm run peers installs it)';

/**
 * True when nats-server is on PATH. Without it, `whole` labs skip (ctx.skip); others note what they leave out and go
 * on. Under CI=true a missing one is an error (CI installs every peer).
 */
export function natsServerHere(ctx: LabContext, what: string, whole = false): boolean {
  if (spawnSync('sh', ['-c', 'command -v nats-server'], { stdio: 'ignore' }).status === 0) return true;
  if (process.env.CI === 'true') throw new WirelabError(ErrorCodes.LAB_INVALID, `CI=true and ${what} needs ${NATS_PEER}`);
  if (whole) ctx.skip(`${what} needs ${NATS_PEER}`);
  ctx.note(`not observed: ${what}. It needs ${NATS_PEER}.`);
  return false;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `pred()` holds (checked every `everyMs`); false when `ms` passed first. */
export async function waitFor(pred: () => boolean | Promise<boolean>, ms: number, everyMs = 10): Promise<boolean> {
  const end = performance.now() + ms;
  for (;;) {
    if (await pred()) return true;
    if (performance.now() > end) return false;
    await sleep(everyMs);
  }
}

// ---- a broker process (embedded engine) to kill -9 ----

export interface BrokerProcess {
  readonly pid: number;
  /** tcp://127.0.0.1:PORT of its native door. */
  readonly url: string;
  /** SIGKILL by PID; resolves once the process is gone. */
  kill9(): Promise<void>;
}

/** Starts labs/_pubsub-broker in a child process on `dir`; ended by kill9() or, at the latest, when the lab ends. */
export async function startBrokerProcess(ctx: LabContext, dir: string, fsync: FsyncPolicy): Promise<BrokerProcess> {
  const script = join(HERE, `_pubsub-broker${MODULE_EXT}`);
  const args = MODULE_EXT === '.ts' ? ['--import', 'tsx', script] : [script];
  const child: ChildProcess = spawn(process.execPath, [...args, dir, fsync], { stdio: ['pipe', 'pipe', 'pipe'], cwd: join(HERE, '..') });
  let out = '';
  let err = '';
  child.stdin!.on('error', () => undefined);
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const kill9 = async (): Promise<void> => {
    if (!gone()) process.kill(child.pid!, 'SIGKILL');
    await exited;
  };
  ctx.defer(kill9);
  const started = await new Promise<number>((resolve, reject) => {
    child.once('error', (e) => reject(new WirelabError(ErrorCodes.CLOSED, `broker process did not start: ${e.message}`, { cause: e })));
    void exited.then(() => reject(new WirelabError(ErrorCodes.CLOSED, `broker process exited before listening: ${err.slice(-800)}`)));
    const timer = setTimeout(() => reject(new WirelabError(ErrorCodes.TIMEOUT, `broker process not listening after 60 s: ${err.slice(-800)}`)), 60_000);
    child.stdout!.on('data', () => {
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return { pid: child.pid!, url: `tcp://127.0.0.1:${started}`, kill9 };
}

// ---- publishing: every id sent and acknowledged ----

export interface PublishRun {
  acks: Acks;
  /** Ids handed to the connection (acks 0: written to the socket). */
  sent: string[];
  /** Ids the broker acknowledged (acks 1 / all). */
  acked: Set<string>;
  /** Publish attempts that failed (an error from the broker or the connection), by error code. */
  failures: Map<string, number>;
  /** Ids that failed at least once (acks 1 / all with `retry`: sent again with the same msgId). */
  failedIds: Set<string>;
  /** Ack latency per acknowledged publish, from its first attempt (retries included), ms. */
  latencies: number[];
  /** Time from the first publish to the last ack (or the last send, acks 0), ms. */
  durationMs: number;
}

export interface PublishOptions {
  acks: Acks;
  /** Ids are `<prefix><n>`; each is also the publish's msgId (a retry is deduplicated). */
  prefix: string;
  /** Publishes in flight at once. Default 64. */
  window?: number;
  /** Stop sending after this many (default: until `stop()` says so). */
  count?: number;
  /** Checked before each send. */
  stop?: () => boolean;
  /** At most this many publishes per second (default: as fast as acks come). */
  ratePerSec?: number;
  /** A failed publish is sent again with the same msgId (acks 1 / all) until it is acknowledged or `stop()`. Default false. */
  retry?: boolean;
  /** Called for each failed attempt. */
  onFailure?: (id: string, err: unknown) => void;
}

const codeOf = (err: unknown): string => String((err as { code?: string })?.code ?? (err as Error)?.name ?? 'error');

/** Publishes numbered messages through `client`, keeping what was sent and what came back acknowledged. */
export function publishNumbered(client: PubsubClient, topic: string, o: PublishOptions): Promise<PublishRun> {
  return startPublishing(client, topic, o).done;
}

/** publishNumbered, with the run readable while it goes on (`run.acked` grows as acks come). */
export function startPublishing(client: PubsubClient, topic: string, o: PublishOptions): { run: PublishRun; done: Promise<PublishRun> } {
  const run: PublishRun = { acks: o.acks, sent: [], acked: new Set(), failures: new Map(), failedIds: new Set(), latencies: [], durationMs: 0 };
  return { run, done: publishInto(run, client, topic, o) };
}

async function publishInto(run: PublishRun, client: PubsubClient, topic: string, o: PublishOptions): Promise<PublishRun> {
  const window = o.window ?? 64;
  const stop = o.stop ?? (() => false);
  const inflight = new Set<Promise<void>>();
  const t0 = performance.now();
  let last = t0;
  const one = async (id: string): Promise<void> => {
    const t = performance.now();
    for (;;) {
      try {
        await client.publish(topic, id, { acks: o.acks, msgId: id });
        last = performance.now();
        if (o.acks !== 0) {
          run.acked.add(id);
          run.latencies.push(last - t);
        }
        return;
      } catch (err) {
        run.failures.set(codeOf(err), (run.failures.get(codeOf(err)) ?? 0) + 1);
        run.failedIds.add(id);
        o.onFailure?.(id, err);
        if (!o.retry || o.acks === 0 || stop() || !client.connected) return;
        await sleep(20);
      }
    }
  };
  for (let n = 0; (o.count === undefined || n < o.count) && !stop(); n++) {
    if (o.ratePerSec) {
      const due = t0 + (n * 1000) / o.ratePerSec;
      const now = performance.now();
      if (due > now) await sleep(due - now);
      if (stop()) break;
    }
    if (!client.connected) break;
    const id = `${o.prefix}${n}`;
    run.sent.push(id);
    const p = one(id);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= window) await Promise.race(inflight);
    // acks 0 resolves on write: without a turn of the event loop now and then, timers and sockets would starve.
    if (n % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  await Promise.allSettled([...inflight]);
  run.durationMs = (o.acks === 0 ? performance.now() : last) - t0;
  return run;
}

/** Acked publishes per second, p50 and p99 of the ack latency (acks 0: sent per second, no latency). */
export function rates(r: PublishRun): { perSec: number; p50: number | '-'; p99: number | '-' } {
  const n = r.acks === 0 ? r.sent.length : r.acked.size;
  const perSec = r.durationMs > 0 ? Math.round((n * 1000) / r.durationMs) : 0;
  if (r.acks === 0 || r.latencies.length === 0) return { perSec, p50: '-', p99: '-' };
  const s = summarize(r.latencies);
  return { perSec, p50: +s.p50.toFixed(2), p99: +s.p99.toFixed(2) };
}

// ---- what a topic holds ----

/**
 * The payloads (ids) stored in every partition of `topic`, read back through the engine, and the records the topic
 * says it holds. A replicated engine may answer nothing for a while after a node died (its stream or meta leader is
 * being elected): the read is tried again until it returns as many ids as the topic holds records, for up to
 * `timeoutMs`; a read still short then is returned as it is (counted as missing, never hidden).
 */
export async function storedIds(engine: Engine, topic: string, timeoutMs = 20_000): Promise<{ ids: Set<string>; records: number }> {
  const end = performance.now() + timeoutMs;
  let best = { ids: new Set<string>(), records: 0 };
  for (;;) {
    try {
      const info = await engine.topic(topic);
      const ids = new Set<string>();
      let records = 0;
      for (const p of info?.partitionInfo ?? []) {
        records += p.records;
        for (let offset = p.firstOffset; offset < p.nextOffset; ) {
          const recs = await engine.read(topic, p.partition, offset, 1000);
          if (recs.length === 0) break;
          for (const r of recs) ids.add(r.payload.toString());
          offset = recs[recs.length - 1]!.offset + 1;
        }
      }
      if (ids.size >= best.ids.size) best = { ids, records };
      if (ids.size >= records) return best;
    } catch {
      // no leader yet: try again
    }
    if (performance.now() > end) return best;
    await sleep(200);
  }
}

/** Acknowledged ids missing from `stored`. */
export const lostOf = (acked: Iterable<string>, stored: Set<string>): string[] => [...acked].filter((id) => !stored.has(id));

/** The embedded engine's SIMULATED power loss (pubsub/engines/embedded: each log cut to its last fsync'd length). */
export async function simulatePowerLoss(engine: Engine): Promise<{ lostRecords: number; lostBytes: number }> {
  const e = engine as Engine & { simulatePowerLoss?: () => Promise<{ lostRecords: number; lostBytes: number }> };
  if (typeof e.simulatePowerLoss !== 'function') throw new WirelabError(ErrorCodes.INVALID_OPTION, `the ${engine.kind} engine has no simulated power loss`);
  return e.simulatePowerLoss();
}

// ---- a JetStream cluster seen from its monitoring endpoints ----

interface JszStream {
  name: string;
  cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] };
  state?: { messages: number; last_seq: number };
}
interface Jsz {
  account_details?: { stream_detail?: JszStream[] }[];
}

/** Anything with the cluster launcher's `nodes` and `monitor` (pubsub/engines/jetstream startNatsCluster). */
export interface MonitoredCluster {
  readonly nodes: readonly { readonly name: string; readonly running: boolean }[];
  monitor<T = unknown>(node: number | string, path: string): Promise<T>;
}

/**
 * The stream's leader as the running nodes' `/jsz?streams=true` report it: the first one that names a leader which
 * is itself running (a follower keeps naming a dead leader until its election timeout). Undefined while none does.
 */
export async function streamLeader(cluster: MonitoredCluster, stream: string): Promise<string | undefined> {
  const running = new Set(cluster.nodes.filter((n) => n.running).map((n) => n.name));
  for (const n of cluster.nodes) {
    if (!n.running) continue;
    try {
      const jsz = await cluster.monitor<Jsz>(n.name, '/jsz?streams=true');
      for (const a of jsz.account_details ?? []) {
        const leader = a.stream_detail?.find((s) => s.name === stream)?.cluster?.leader;
        if (leader && running.has(leader)) return leader;
      }
    } catch {
      // just killed or not listening yet: ask the next node
    }
  }
  return undefined;
}
