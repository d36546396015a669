/**
 * A local NATS JetStream cluster for labs, tests and `wirelab up --engine jetstream`: N `nats-server` processes
 * (Debian's nats-server 2.9.10) on 127.0.0.1, each with a client, a cluster (route) and a monitoring port, JetStream
 * on, storage in a temp dir. Started and stopped by PID; `kill(node, 'SIGKILL')` is the fault tests' tool and
 * `restart(node)` brings the same node (same name, ports and store dir) back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, WirelabError } from '../../../core/errors.ts';
import { checkInt, withDefaults } from '../../../core/options.ts';
import { closedPort } from '../../../core/ports.ts';
import { NOOP_TRACER, type Tracer } from '../../../core/trace/index.ts';

export interface NatsClusterOptions {
  /** nats-server processes. Default 3 (JetStream needs 3 for R3 streams; 1 starts a single server without a cluster block). */
  nodes?: number;
  /**
   * Ports are derived from it: node i listens for clients on base + 4230 + i, routes on base + 6230 + i, monitoring on
   * base + 8230 + i (nats-server's own defaults shifted past wirelab's native door at base + 4222 and HTTP door at base + 8222, as `wirelab up --port-base` shifts every service). Default 0:
   * free ports chosen on 127.0.0.1.
   */
  portBase?: number;
  /** Where configs and JetStream stores go. Default: a new temp dir, removed by close(). A given dir is kept. */
  dir?: string;
  /** Give up when the JetStream meta leader is not elected by then. Default 15,000 ms. */
  startTimeoutMs?: number;
  /** Cluster name: server names are `<name>-<i>`, the `cluster { name }` block `<name>-<8 hex digits>` (one per start). Default 'wirelab'. */
  name?: string;
  /** The `nats-server` executable. Default 'nats-server' (on PATH). */
  command?: string;
  tracer?: Tracer;
}

const DEFAULTS = { nodes: 3, portBase: 0, startTimeoutMs: 15_000, name: 'wirelab', command: 'nats-server', tracer: NOOP_TRACER };

export interface NatsNode {
  /** server_name: `<cluster>-<i>`. */
  readonly name: string;
  /** PID of the running process (0 while it is stopped). */
  readonly pid: number;
  /** Client port. */
  readonly port: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
  readonly url: string;
  readonly running: boolean;
  /** What the process printed (last 64 KiB). */
  readonly log: string;
}

export interface NatsCluster {
  /** Client URLs of every node (`nats://127.0.0.1:PORT`). */
  readonly urls: string[];
  readonly nodes: readonly NatsNode[];
  readonly dir: string;
  /** Sends `signal` (default SIGTERM) to node i's process by its PID and waits for it to exit. */
  kill(node: number | string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts node i again with the same config and store (it catches up from the others). */
  restart(node: number | string): Promise<void>;
  /** GET a monitoring endpoint (`/jsz?streams=true`, `/varz`) of a running node, parsed. */
  monitor<T = unknown>(node: number | string, path: string): Promise<T>;
  /** The server_name of the JetStream meta leader as a running node sees it (undefined while there is none). */
  metaLeader(): Promise<string | undefined>;
  /** Stops every node (SIGTERM, then SIGKILL after 3 s) and removes the temp dir it made. */
  close(): Promise<void>;
}

const LOG_KEEP = 64 * 1024;
/** Starts tried when a port chosen by closedPort() was taken before nats-server bound it. */
const START_ATTEMPTS = 3;

class Node implements NatsNode {
  child: ChildProcess | undefined;
  log = '';
  constructor(
    readonly index: number,
    readonly name: string,
    public port: number,
    public clusterPort: number,
    public monitorPort: number,
    readonly configFile: string,
  ) {}
  get pid(): number {
    return this.running ? this.child!.pid! : 0;
  }
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
}

/** True once `port` accepts a TCP connection (nats-server's monitor answers ~20 ms before its client listener does). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function httpGetJson<T>(port: number, path: string, timeoutMs = 2000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()) as T);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new WirelabError(ErrorCodes.TIMEOUT, `GET ${path} on :${port} timed out`)));
    req.on('error', reject);
  });
}

function config(node: Node, all: Node[], clusterName: string, storeDir: string): string {
  const lines = [
    `server_name: ${JSON.stringify(node.name)}`,
    `listen: "127.0.0.1:${node.port}"`,
    `http: "127.0.0.1:${node.monitorPort}"`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(storeDir)}`,
    `}`,
  ];
  if (all.length > 1) {
    lines.push(
      `cluster {`,
      `  name: ${JSON.stringify(clusterName)}`,
      `  listen: "127.0.0.1:${node.clusterPort}"`,
      `  routes: [`,
      ...all.filter((n) => n !== node).map((n) => `    "nats-route://127.0.0.1:${n.clusterPort}"`),
      `  ]`,
      `}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Starts the cluster and resolves once a JetStream meta leader is elected (with one node: once JetStream is up). */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const o = withDefaults(DEFAULTS, options);
  checkInt('nodes', o.nodes, 1, 9);
  checkInt('portBase', o.portBase, 0, 65535 - 8230 - o.nodes);
  checkInt('startTimeoutMs', o.startTimeoutMs, 100, 600_000);
  const tracer = o.tracer;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'wirelab-nats-')));
  await mkdir(dir, { recursive: true });
  // The route block's name is this cluster's own: two clusters started at once on this machine (parallel tests) never
  // join each other's routes even if one's chosen port ends up with the other (nats-server refuses a name mismatch).
  const routeName = `${o.name}-${randomBytes(4).toString('hex')}`;
  const nodes: Node[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const port = o.portBase ? o.portBase + 4230 + i : 0;
    const clusterPort = o.portBase ? o.portBase + 6230 + i : 0;
    const monitorPort = o.portBase ? o.portBase + 8230 + i : 0;
    nodes.push(new Node(i, `${o.name}-${i}`, port, clusterPort, monitorPort, join(dir, `n${i}.conf`)));
  }
  // With free ports chosen here, another process can take one between the choice and nats-server's bind (an
  // outgoing connection gets its local port from the same ephemeral range): such a start is retried on new ports.
  const choosePortsAndWriteConfigs = async (): Promise<void> => {
    if (!o.portBase) {
      for (const n of nodes) {
        n.port = await closedPort('tcp');
        n.clusterPort = await closedPort('tcp');
        n.monitorPort = await closedPort('tcp');
      }
    }
    for (const n of nodes) {
      const store = join(dir, n.name);
      await mkdir(store, { recursive: true });
      await writeFile(n.configFile, config(n, nodes, routeName, store));
    }
  };

  const find = (node: number | string): Node => {
    const n = typeof node === 'number' ? nodes[node] : nodes.find((x) => x.name === node);
    if (!n) throw new WirelabError(ErrorCodes.INVALID_OPTION, `no nats-server node ${String(node)}`);
    return n;
  };

  const start = (n: Node): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(o.command, ['-c', n.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      n.child = child;
      const onData = (d: Buffer): void => {
        n.log = (n.log + d.toString()).slice(-LOG_KEEP);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (err) => {
        n.log += `\nspawn error: ${err.message}`;
        reject(new WirelabError(ErrorCodes.CLOSED, `${o.command} (${n.name}) did not start: ${err.message}`, { cause: err }));
      });
      child.once('spawn', () => {
        tracer.emit('nats', n.name, '*', 'start', () => ({ summary: `${n.name} pid ${child.pid} on ${n.url}`, meta: { pid: child.pid, port: n.port } }));
        resolve();
      });
      child.once('exit', (code, signal) => {
        tracer.emit('nats', n.name, '*', 'exit', () => ({ summary: `${n.name} exited ${signal ?? code}`, meta: { code, signal } }));
      });
    });

  const kill = async (node: number | string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const n = find(node);
    if (!n.running) return;
    const child = n.child!;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, signal);
    tracer.emit('nats', n.name, '*', 'kill', () => ({ summary: `${signal} to ${n.name} (pid ${child.pid})`, meta: { signal, pid: child.pid } }));
    await exited;
  };

  const stop = async (n: Node): Promise<void> => {
    if (!n.running) return;
    const child = n.child!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (n.running) child.kill('SIGKILL');
    }, 3000);
    await exited;
    clearTimeout(timer);
  };

  const monitor = <T>(node: number | string, path: string): Promise<T> => httpGetJson<T>(find(node).monitorPort, path);

  const metaLeader = async (): Promise<string | undefined> => {
    for (const n of nodes) {
      if (!n.running) continue;
      try {
        const jsz = await httpGetJson<{ meta_cluster?: { leader?: string }; config?: unknown }>(n.monitorPort, '/jsz');
        if (nodes.length === 1) return jsz.config ? n.name : undefined;
        if (jsz.meta_cluster?.leader) return jsz.meta_cluster.leader;
      } catch {
        // not listening yet / just killed: ask the next one
      }
    }
    return undefined;
  };

  // If this process exits without close() (a guard timer's process.exit), no nats-server is left behind.
  const onExit = (): void => {
    for (const n of nodes) if (n.running) n.child!.kill('SIGKILL');
  };
  process.once('exit', onExit);
  const close = async (): Promise<void> => {
    process.removeListener('exit', onExit);
    await Promise.all(nodes.map(stop));
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };

  const waitForLeader = async (what: string): Promise<void> => {
    const deadline = Date.now() + o.startTimeoutMs;
    for (;;) {
      if ((await metaLeader()) && (await Promise.all(nodes.filter((n) => n.running).map((n) => accepts(n.port)))).every(Boolean)) return;
      const dead = nodes.find((n) => n.child && !n.running && n.child.exitCode !== null && n.child.exitCode !== 0);
      if (dead) throw new WirelabError(ErrorCodes.CLOSED, `${dead.name} exited ${dead.child!.exitCode}:\n${dead.log.slice(-2000)}`);
      if (Date.now() > deadline) {
        throw new WirelabError(ErrorCodes.TIMEOUT, `${what}: no JetStream meta leader within ${o.startTimeoutMs} ms:\n${nodes.map((n) => `${n.name}: ${n.log.slice(-600)}`).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const t0 = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      await choosePortsAndWriteConfigs();
      for (const n of nodes) await start(n);
      await waitForLeader('nats cluster start');
      break;
    } catch (err) {
      const portTaken = !o.portBase && attempt < START_ATTEMPTS && nodes.some((n) => !n.running && /address already in use/i.test(n.log));
      if (!portTaken) {
        await close();
        throw err;
      }
      tracer.emit('nats', o.name, '*', 'retry', () => ({ summary: `a chosen port was taken before nats-server bound it: start ${attempt + 1} on new ports`, meta: { attempt } }));
      await Promise.all(nodes.map(stop));
      for (const n of nodes) n.log = '';
    }
  }
  tracer.emit('nats', o.name, '*', 'ready', () => ({ summary: `${o.nodes} nats-server nodes up, meta leader elected in ${Date.now() - t0} ms`, meta: { ms: Date.now() - t0 } }));

  return {
    urls: nodes.map((n) => n.url),
    nodes,
    dir,
    kill,
    async restart(node) {
      const n = find(node);
      if (n.running) await stop(n);
      await start(n);
    },
    monitor,
    metaLeader,
    close,
  };
}
