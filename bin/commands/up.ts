import Table from 'cli-table3';
import { WirelabError, ErrorCodes } from '../../core/errors.ts';
import { DEFAULT_PORT_BASE, maxPortBase, type ServiceEntry, type UpRow } from '../../core/registry.ts';
import type { RunningServer } from '../../core/server.ts';
import { LiveTracer, type Tracer, type WireMask } from '../../core/trace/index.ts';
import { SERVICES as SERVER_SERVICES } from '../../servers/index.ts';
import { PUBSUB_SERVICES } from '../../pubsub/services.ts';
import { CHAT_SERVICE, CHAT_TLS_SERVICE } from '../../apps/chat/service.ts';
import { COMPACT } from '../../core/lab/report.ts';
import { untilStopped } from '../stop.ts';
import { pcapReady } from '../tracing.ts';
import { datagramSeq } from '../../protocols/datagram.ts';
import { startUpEngine, type UpEngine } from '../../pubsub/engines/jetstream/up.ts';
import { createDashboard, DASHBOARD_PATH, routerOf } from '../../apps/dashboard/index.ts';
import { toPcapng } from '../../core/export/pcapng.ts';
import { toHar } from '../../core/export/har.ts';
import { defaultMailStore } from '../../servers/mail/shared.ts';
import { currentSharedBroker } from '../../pubsub/services.ts';
import { chaosControl, loadUpConfig, startOptionsOf, type UpConfig } from './up-config.ts';
import { checkTargets, impairServer, parseImpairSpecs, plansFor, startUpControl, type ImpairPlan } from '../../core/impair/cli.ts';

export interface UpFlags {
  'port-base'?: string;
  host?: string;
  json?: boolean;
  only?: string;
  impair?: string[];
  engine?: string;
  'nats-url'?: string;
  'on-unavailable'?: string;
  /** A JSON file of server options: { "servers": { "ftp": { "pasvPortMin": 30000, "chaos": {...} } } } (up-config.ts). */
  config?: string;
  /** SERVICE.OPTION=VALUE, over the config file. */
  set?: string[];
}

/**
 * The servers of servers/, then the pub/sub broker's doors (pubsub/services.ts: one broker shared by them), then the
 * chat app on that broker (chat-tls after chat: a second door on the same chat).
 */
export const UP_SERVICES: ServiceEntry[] = [...SERVER_SERVICES, ...PUBSUB_SERVICES, CHAT_SERVICE, CHAT_TLS_SERVICE];
const SERVICES = UP_SERVICES;

interface Started {
  entry: ServiceEntry;
  server: RunningServer;
}

/** Exit code 2 on a usage error; otherwise runs until SIGINT / SIGTERM and exits 0. */
export async function up(flags: UpFlags, flagTracer: Tracer): Promise<number> {
  // --pcap-real: tcpdump listens before any server does.
  await pcapReady();
  // The dashboard (/_wirelab/ on the HTTP server) attaches to this tracer while a page watches; --trace stays its base.
  // Its socket taps are on while a page watches (or --pcap / --trace-file asked), so the downloads carry payloads.
  const tracer = new LiveTracer(flagTracer);
  const base = flags['port-base'] === undefined ? DEFAULT_PORT_BASE : Number(flags['port-base']);
  const limit = maxPortBase(SERVICES);
  if (!Number.isInteger(base) || base < 0 || base > limit) {
    console.error(`wirelab up: --port-base must be an integer from 0 to ${limit}, got ${flags['port-base']}`);
    return 2;
  }
  const host = flags.host ?? '127.0.0.1';
  let services = SERVICES;
  if (flags.only) {
    const wanted = flags.only.split(',');
    const unknown = wanted.filter((w) => !SERVICES.some((s) => s.name === w || s.proto === w));
    if (unknown.length > 0) {
      console.error(`wirelab up: unknown service ${unknown.join(', ')}; services: ${SERVICES.map((s) => s.name).join(', ')}`);
      return 2;
    }
    services = SERVICES.filter((s) => wanted.includes(s.name) || wanted.includes(s.proto));
  }

  let plans: ImpairPlan[];
  let config: UpConfig;
  try {
    plans = parseImpairSpecs(flags.impair);
    checkTargets(plans, services);
    config = await loadUpConfig(flags.config, flags.set);
  } catch (err) {
    console.error(`wirelab up: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  // With --impair, each matching server listens on a free port and a proxy or relay takes its place (core/impair/cli.ts).
  const own: RunningServer[] = [];
  let control: Awaited<ReturnType<typeof startUpControl>> | undefined;
  try {
    // The control API also sets server chaos at run time (POST /servers/<name>/chaos) once --config or --set is given.
    const configured = flags.config !== undefined || (flags.set?.length ?? 0) > 0;
    // A proxy made through the API in front of one of these servers masks secrets as that server's protocol needs.
    const wireMaskFor = (_host: string, port: number): (() => WireMask) | undefined => own.find((s) => s.port === port)?.wireMask;
    control = plans.length > 0 || configured ? await startUpControl(host, base, tracer, wireMaskFor) : undefined;
  } catch (err) {
    console.error(`wirelab up: the impairment control API did not start: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }

  // --engine / --nats-url (issue 13): the pub/sub engine; a local nats-server cluster, started here, stops last.
  let engineUp: UpEngine | undefined;
  try {
    engineUp = await startUpEngine({ engine: flags.engine, natsUrl: flags['nats-url'], onUnavailable: flags['on-unavailable'], portBase: base, tracer });
  } catch (err) {
    await control?.close();
    console.error(`wirelab up: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof WirelabError && err.code === ErrorCodes.USAGE ? 2 : 1;
  }
  const mail = services.some((s) => ['smtp', 'imap', 'pop3'].includes(s.proto));
  const dashboard = createDashboard({
    tracer,
    broker: currentSharedBroker,
    ...(mail ? { mailStore: defaultMailStore } : {}),
    ...(control ? { controlUrl: control.url! } : {}),
    // The download buttons: what the page recorded, as a capture (headers synthesized) and as HAR 1.2.
    exporters: {
      pcapng: (events) => toPcapng(events, { comment: 'wirelab up: the events recorded while a dashboard page watched.' }).file,
      har: (events) => JSON.stringify(toHar(events, 'wirelab up: the HTTP exchanges recorded while a dashboard page watched'), null, 1) + '\n',
    },
  });
  const started: Started[] = [];
  const closeAll = (): Promise<unknown> =>
    Promise.allSettled([...started.map((s) => s.server.close()), control?.close()]).then(() => engineUp?.close());
  for (const entry of services) {
    const port = base === 0 ? 0 : base + entry.wellKnownPort;
    try {
      const mine = plansFor(plans, entry);
      // --config / --set options ride along: each service's start passes its options object on to the server.
      const server = await entry.start({ ...startOptionsOf(entry.name, config[entry.name]), host, port: mine.length > 0 ? 0 : port, tracer });
      own.push(server);
      const router = entry.name === 'http' ? routerOf(server) : undefined;
      if (router) dashboard.register(router);
      const chaos = chaosControl(server);
      if (chaos && control) control.servers.set(entry.name, chaos);
      started.push({ entry, server: mine.length > 0 ? await impairServer(entry, server, mine, { host, port, tracer, control, sequenceOf: datagramSeq }) : server });
    } catch (err) {
      await closeAll();
      if (err instanceof WirelabError && err.code === ErrorCodes.PORT_IN_USE) {
        console.error(
          `wirelab up: port ${port} (${entry.name}) is already in use; free it or move every port with --port-base N (now ${base})`,
        );
        return 1;
      }
      // A value --config / --set gave that the server's own checks refused (InvalidOptionError, naming it) is a usage error.
      if (err instanceof WirelabError && err.code === ErrorCodes.INVALID_OPTION) {
        console.error(`wirelab up: ${entry.name}: ${err.message}`);
        return 2;
      }
      console.error(`wirelab up: ${entry.name} did not start: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }

  const byName = new Map(started.map((s) => [s.entry.name, s.server]));
  const rows = started.map(({ entry, server }): UpRow => ({
    name: entry.name,
    proto: server.proto,
    host: server.host,
    port: server.port,
    ...(entry.url || server.url ? { url: entry.url?.(server) ?? server.url } : {}),
    ...(server.paths ? { paths: server.paths } : {}),
    try: entry.tryWith(server),
    ...(entry.extra?.(server, byName) ?? {}),
    ...('impairment' in server ? { impairment: server.impairment } : {}),
  }));
  for (const r of engineUp?.rows ?? []) rows.push(r);
  const httpRow = rows.find((r) => r.name === 'http');
  const dashboardUrl = httpRow?.url ? `${httpRow.url}${DASHBOARD_PATH}/` : undefined;
  if (httpRow && dashboardUrl) Object.assign(httpRow, { dashboard: dashboardUrl });
  if (control) rows.push({ name: 'impair-control', proto: 'http', host: control.host, port: control.port, url: control.url!, try: `curl ${control.url}/proxies` });
  dashboard.setServers(rows.map((r) => ({ ...r, describe: services.find((s) => s.name === r.name)?.describe })));
  if (flags.json) {
    process.stdout.write(JSON.stringify(rows) + '\n');
  } else {
    // A command too long for the table (the WebSocket one-liners) goes below it, whole, so it pastes as it is.
    const room = Math.max(60, (process.stdout.columns || 180) - 70);
    const below: string[] = [];
    const table = new Table({ head: ['service', 'proto', 'address', 'try it with'], style: { head: [], border: [] }, chars: COMPACT });
    for (const r of rows) {
      const fits = r.try.length <= room;
      if (!fits) below.push(`${r.name}: ${r.try}`);
      table.push([r.name + ('impairment' in r ? ` (impaired: ${r.impairment})` : ''), r.proto, r.url ?? `${r.host}:${r.port}`, fits ? r.try : '(below the table)']);
    }
    console.log(table.toString());
    for (const line of below) console.log(line);
    for (const { entry, server } of started) {
      for (const [k, v] of Object.entries(entry.extra?.(server, byName) ?? {})) if (typeof v === 'string') console.log(`${entry.name} ${k}: ${v}`);
    }
    if (dashboardUrl) console.log(`dashboard: ${dashboardUrl} (live traffic, servers, pub/sub, impairments, mail)`);
    console.log(`wirelab is up: ${rows.length} servers on ${host}. Ctrl-C stops them. Trace with: npm start -- --trace`);
  }

  // SIGINT, SIGTERM, or (under npm / npx) the parent gone: bin/stop.ts says why each.
  await untilStopped();
  // Closing destroys every socket; the timer only guards against a server that will not close.
  const guard = setTimeout(() => process.exit(0), 1500);
  guard.unref();
  await closeAll();
  await tracer.close();
  clearTimeout(guard);
  return 0;
}
