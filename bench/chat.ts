/**
 * `npm run bench -- chat` (issue 15): wirelab's chat server (apps/chat/server) next to a Socket.IO chat server of the
 * same shape (bench/fixtures/socketio-chat.ts), each in a process of its own, driven by one load process
 * (bench/fixtures/chat-load.ts): 1,000 WebSocket clients in 10 rooms of 100. Taking turns (socketio, wirelab, ...), a
 * fresh server and load process each time, medians of the rounds:
 *   throughput  each room sends as fast as its deliveries allow (WINDOW messages in flight per room) for THROUGHPUT_MS:
 *               delivered messages/s (a delivery: one message reaching one client), server CPU µs per delivery
 *   latency     LATENCY_RATE messages/s in all (x100 deliveries) for LATENCY_MS: delivery latency p50 / p99
 *   memory      server RSS after a full GC with the clients joined minus before they connected, per connection
 *   lost        deliveries expected (sent x room size) minus delivered, over both phases of every round
 * WIRELAB_BENCH_ROUNDS=n changes the number of rounds (default 3).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from '../core/stats.ts';
import { defineBench, type BenchRow } from './harness.ts';
import type { LoadConfig, PhaseResult } from './fixtures/chat-load.ts';

const CONFIG: LoadConfig = { clients: 1000, rooms: 10, throughputMs: 4000, window: 8, latencyRate: 100, latencyMs: 3000 };
const ROUNDS = Number(process.env.WIRELAB_BENCH_ROUNDS ?? 3);
const SUBJECTS = { socketio: 'Socket.IO 4', wirelab: 'wirelab chat' } as const;
export type Kind = keyof typeof SUBJECTS;

export interface ChatRound {
  rate: number;
  cpuPerDelivery: number;
  p50: number;
  p99: number;
  bytesPerConnection: number;
  lost: number;
  /** CPU share of one core over the throughput phase: the server's, the load process's. */
  serverCpu: number;
  loadCpu: number;
}

const tsx = { execArgv: ['--import', 'tsx'] };

/** The next IPC message holding `key`: its value, or (whole) the message itself. */
function nextMessage<T>(child: ChildProcess, key: string, whole = false): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>): void => {
      if (m.error) return; // a refusal from the server: counted as lost below
      if (!(key in m)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve((whole ? m : m[key]) as T);
    };
    const onExit = (code: number | null): void => reject(new Error(`${key}: process exited with ${code}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** One turn of one server: a fresh server process, a fresh load process with `config` (test/apps/chat/bench.test.ts runs it small). */
export async function chatRound(kind: Kind, config: LoadConfig = CONFIG): Promise<ChatRound> {
  const server = fork(fileURLToPath(new URL('./fixtures/chat-server.ts', import.meta.url)), [kind], { execArgv: ['--expose-gc', ...tsx.execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const sample = (): Promise<{ cpu: number; rss: number }> => {
    const p = nextMessage<{ cpu: number; rss: number }>(server, 'rss', true);
    server.send('sample');
    return p;
  };
  server.on('error', () => undefined);
  let load: ChildProcess | undefined;
  try {
    const port = await nextMessage<number>(server, 'port');
    const before = await sample();
    load = fork(fileURLToPath(new URL('./fixtures/chat-load.ts', import.meta.url)), [kind, String(port), JSON.stringify(config)], { ...tsx, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    load.on('error', () => undefined);
    const errors: string[] = [];
    load.on('message', (m: { error?: string }) => void (m.error && errors.length < 3 && errors.push(m.error)));
    await nextMessage(load, 'ready');
    const joined = await sample();
    const throughputP = nextMessage<PhaseResult>(load, 'throughput');
    const t0 = performance.now();
    load.send('go');
    const t = await throughputP;
    const after = await sample();
    const wallMs = performance.now() - t0;
    const latencyP = nextMessage<PhaseResult>(load, 'latency');
    load.send('go');
    const l = await latencyP;
    const loader = load;
    await new Promise((r) => (loader.exitCode === null ? loader.once('exit', r) : r(undefined)));
    if (errors.length) console.log(`  ${SUBJECTS[kind]}: server refusals, e.g. ${errors.join('; ')}`);
    return {
      rate: t.rate,
      cpuPerDelivery: (after.cpu - joined.cpu) / Math.max(1, t.delivered),
      p50: l.p50,
      p99: l.p99,
      bytesPerConnection: (joined.rss - before.rss) / config.clients,
      lost: t.expected - t.delivered + (l.expected - l.delivered),
      serverCpu: (after.cpu - joined.cpu) / 1000 / wallMs,
      loadCpu: t.loadCpu,
    };
  } finally {
    if (load && load.exitCode === null) load.kill();
    if (server.connected) server.send('exit');
  }
}

export default defineBench({
  name: 'chat',
  title: `chat servers side by side: ${CONFIG.clients} WebSocket clients in ${CONFIG.rooms} rooms, throughput with ${CONFIG.window} messages in flight per room for ${CONFIG.throughputMs / 1000} s, latency at ${CONFIG.latencyRate} msg/s (x${CONFIG.clients / CONFIG.rooms} deliveries), ${ROUNDS} rounds taking turns, medians`,
  async run(): Promise<BenchRow[]> {
    const results: Record<Kind, ChatRound[]> = { socketio: [], wirelab: [] };
    for (let i = 0; i < ROUNDS; i++) for (const kind of Object.keys(SUBJECTS) as Kind[]) results[kind].push(await chatRound(kind));
    const rows: BenchRow[] = [];
    // Which side was the limit: a load process near 100% of a core means the rates compare the servers only as far as
    // one client process can drive them (server CPU per delivery is the number that does not depend on that).
    const share = (v: number): string => `${(v * 100).toFixed(0)}%`;
    for (const kind of Object.keys(SUBJECTS) as Kind[]) {
      console.log(`  ${SUBJECTS[kind]}, throughput phase, CPU of one core (median): server ${share(median(results[kind].map((r) => r.serverCpu)))}, load process ${share(median(results[kind].map((r) => r.loadCpu)))}`);
    }
    const pick = (kind: Kind, f: (r: ChatRound) => number): number => median(results[kind].map(f));
    const lbl = (what: string, kind: Kind): string => `${what}: ${SUBJECTS[kind]}`;
    for (const kind of Object.keys(SUBJECTS) as Kind[]) {
      const vs = kind === 'wirelab';
      rows.push({ label: lbl('delivered', kind), value: pick(kind, (r) => r.rate), unit: 'msg/s', ...(vs ? { baseline: lbl('delivered', 'socketio'), target: 1 } : {}) });
    }
    for (const kind of Object.keys(SUBJECTS) as Kind[]) {
      const vs = kind === 'wirelab';
      rows.push({ label: lbl('p99', kind), value: pick(kind, (r) => r.p99), unit: 'ms', lowerIsBetter: true, ...(vs ? { baseline: lbl('p99', 'socketio'), target: 1 } : {}) });
      rows.push({ label: lbl('p50', kind), value: pick(kind, (r) => r.p50), unit: 'ms', lowerIsBetter: true, ...(vs ? { baseline: lbl('p50', 'socketio') } : {}) });
    }
    for (const kind of Object.keys(SUBJECTS) as Kind[]) {
      const vs = kind === 'wirelab';
      rows.push({ label: lbl('server CPU', kind), value: pick(kind, (r) => r.cpuPerDelivery), unit: 'µs/delivery', lowerIsBetter: true, ...(vs ? { baseline: lbl('server CPU', 'socketio') } : {}) });
      rows.push({ label: lbl('server memory', kind), value: pick(kind, (r) => r.bytesPerConnection) / 1024, unit: 'KiB/conn', lowerIsBetter: true, ...(vs ? { baseline: lbl('server memory', 'socketio') } : {}) });
    }
    for (const kind of Object.keys(SUBJECTS) as Kind[]) rows.push({ label: lbl('lost (all rounds)', kind), value: results[kind].reduce((a, r) => a + r.lost, 0), unit: 'deliveries' });
    return rows;
  },
});
