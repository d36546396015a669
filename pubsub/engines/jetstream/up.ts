/**
 * `wirelab up --engine embedded|jetstream [--nats-url nats://...]`: which engine the shared broker of the pub/sub doors
 * runs on. With `--engine jetstream` and no URL, a local 3-node nats-server cluster is started (ports from the port
 * base: clients base + 4230 + i, routes base + 6230 + i, monitoring base + 8230 + i; free ports with --port-base 0)
 * and stopped with `up`. With a URL, nothing is started: the engine connects there (and `up` exits 1 with one line
 * naming the URL when it cannot).
 */
import { ErrorCodes, WirelabError } from '../../../core/errors.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { NatsCluster } from './cluster.ts';

export const UP_ENGINES = ['embedded', 'jetstream'] as const;
export type UpEngineKind = (typeof UP_ENGINES)[number];

/** What the pub/sub doors' shared broker passes to createEngine. */
export type UpEngineChoice = { kind: 'embedded' } | { kind: 'jetstream'; servers: string[]; onUnavailable: 'wait' | 'error' };

export interface UpEngine {
  choice: UpEngineChoice;
  /** Rows for the `up` table: one per nats-server node started here (none for embedded or --nats-url). */
  rows: { name: string; proto: string; host: string; port: number; url: string; try: string; pid?: number; monitor?: string }[];
  close(): Promise<void>;
}

let current: UpEngineChoice = { kind: 'embedded' };

/** The engine `up` chose (default embedded): pubsub/services.ts creates its shared broker's engine from it. */
export function upEngineChoice(): UpEngineChoice {
  return current;
}

export interface UpEngineFlags {
  engine?: string;
  natsUrl?: string;
  /** --on-unavailable: what a publish does while the cluster cannot take it (options.ts `onUnavailable`). Default 'wait'. */
  onUnavailable?: string;
  portBase: number;
  tracer: Tracer;
}

/** Throws WL_ERR_USAGE for a bad flag, WL_ERR_PUBSUB_UNAVAILABLE when the given NATS URL cannot be reached. */
export async function startUpEngine(flags: UpEngineFlags): Promise<UpEngine> {
  const kind = flags.engine ?? (flags.natsUrl ? 'jetstream' : 'embedded');
  if (!(UP_ENGINES as readonly string[]).includes(kind)) {
    throw new WirelabError(ErrorCodes.USAGE, `--engine must be one of ${UP_ENGINES.join(', ')}, got ${kind}`);
  }
  const onUnavailable = flags.onUnavailable ?? 'wait';
  if (onUnavailable !== 'wait' && onUnavailable !== 'error') throw new WirelabError(ErrorCodes.USAGE, `--on-unavailable must be wait or error, got ${onUnavailable}`);
  if (kind === 'embedded') {
    if (flags.natsUrl) throw new WirelabError(ErrorCodes.USAGE, '--nats-url needs --engine jetstream');
    if (flags.onUnavailable) throw new WirelabError(ErrorCodes.USAGE, '--on-unavailable needs --engine jetstream');
    current = { kind: 'embedded' };
    return { choice: current, rows: [], close: async () => undefined };
  }
  if (flags.natsUrl) {
    const servers = flags.natsUrl.split(',');
    // Loaded here, not at the top: every other command (and `up` on the embedded engine) starts without the nats client.
    const { createJetStreamEngine } = await import('./index.ts');
    // Fail at start, with the URL, rather than at the first publish.
    const probe = await createJetStreamEngine({ servers, tracer: flags.tracer });
    await probe.close();
    current = { kind: 'jetstream', servers, onUnavailable };
    return { choice: current, rows: [], close: async () => undefined };
  }
  const { startNatsCluster } = await import('./cluster.ts');
  const cluster: NatsCluster = await startNatsCluster({ nodes: 3, portBase: flags.portBase, tracer: flags.tracer });
  current = { kind: 'jetstream', servers: cluster.urls, onUnavailable };
  return {
    choice: current,
    rows: cluster.nodes.map((n, i) => ({
      name: `nats-${i}`,
      proto: 'nats',
      host: '127.0.0.1',
      port: n.port,
      url: n.url,
      pid: n.pid,
      monitor: `http://127.0.0.1:${n.monitorPort}`,
      try: `curl -s 'http://127.0.0.1:${n.monitorPort}/jsz?streams=true'`,
    })),
    close: () => cluster.close(),
  };
}
