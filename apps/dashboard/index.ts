import { HttpError } from '../../core/errors.ts';
import type { LiveTracer, TraceEvent } from '../../core/trace/index.ts';
import { SessionRecorder, type RecordLimits } from './record.ts';
import type { RunningServer } from '../../core/server.ts';
import type { UpRow } from '../../core/registry.ts';
import { json, readBody, send, type Ctx, type Router } from '../../servers/http/index.ts';
import type { MailStore } from '../../servers/mail/store/index.ts';
import type { Broker } from '../../pubsub/broker/types.ts';
import { registerMailApi, MAIL_API_DEFAULTS, type MailApiLimits } from './mail.ts';
import { DASHBOARD_PAGE } from './page.ts';
import { pubsubSnapshot, type RateSample } from './pubsub.ts';
import { serveEventStream, STREAM_DEFAULTS, type StreamLimits, type StreamStats } from './stream.ts';

export { LiveTracer } from '../../core/trace/index.ts';
export { RECORD_DEFAULTS, type RecordLimits } from './record.ts';
export { MAIL_API_DEFAULTS, type MailApiLimits } from './mail.ts';
export { STREAM_DEFAULTS, type StreamLimits } from './stream.ts';

/** The path the dashboard lives under on the HTTP server. */
export const DASHBOARD_PATH = '/_wirelab';

/** One row of `wirelab up`'s table, as the dashboard shows it. */
export type DashboardServer = UpRow;

/** A session exporter (core/export: pcapng, HAR) over the events recorded while a page watched. */
export type SessionExporter = (events: TraceEvent[]) => Buffer | string | Promise<Buffer | string>;

export interface DashboardOptions {
  /** The tracer every server of the process was started with; a watching page attaches to it. */
  tracer: LiveTracer;
  /** The mail store the mail servers share (opened on first use). Without it the mail view says so. */
  mailStore?: () => Promise<MailStore>;
  /** The pub/sub broker, when one runs (undefined: no pub/sub door was started). */
  broker?: () => Promise<Broker> | undefined;
  /** The impairment control API (`wirelab up --impair`), e.g. http://127.0.0.1:8474. */
  controlUrl?: string;
  /** Download buttons: a missing one answers 501. */
  exporters?: Partial<Record<'pcapng' | 'har', SessionExporter>>;
  stream?: Partial<StreamLimits>;
  mail?: Partial<MailApiLimits>;
  /** What the download buttons keep (recorded only while a page watches): RECORD_DEFAULTS. */
  record?: Partial<RecordLimits>;
}

export interface Dashboard {
  /** Registers the routes under /_wirelab/ on an HTTP server's router (before or after it listens). */
  register(router: Router): void;
  /** The servers table (wirelab up sets it once every server runs). */
  setServers(rows: DashboardServer[]): void;
  readonly stats: StreamStats;
}

const EXPORT_TYPES = {
  pcapng: { type: 'application/x-pcapng', file: 'wirelab-session.pcapng', module: 'core/export/pcapng' },
  har: { type: 'application/json', file: 'wirelab-session.har', module: 'core/export/har' },
} as const;

/**
 * The live dashboard (issue 16 item 5): the running servers, the live trace stream (SSE), a connection's ladder, the
 * pub/sub topics, the impairment proxies (through the control API), the mail store, session downloads.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const limits: StreamLimits = { ...STREAM_DEFAULTS, ...options.stream };
  const mailLimits: MailApiLimits = { ...MAIL_API_DEFAULTS, ...options.mail };
  const stats: StreamStats = { watchers: 0, sent: 0, dropped: 0 };
  const recorded = new SessionRecorder(options.record);
  let servers: DashboardServer[] = [];
  let sample: RateSample | undefined;
  const P = DASHBOARD_PATH;

  const impair = async (ctx: Ctx): Promise<void> => {
    if (!options.controlUrl) throw new HttpError(404, 'no impairment control API: start wirelab up with --impair (e.g. --impair http:latency=0ms) to put servers behind proxies');
    const rest = ctx.params[0] ?? '';
    if (!/^[A-Za-z0-9_./-]*$/.test(rest) || rest.includes('..')) throw new HttpError(400, 'bad control API path');
    const body = ctx.method === 'POST' ? await readBody(ctx) : undefined;
    let r: Response;
    try {
      r = await fetch(`${options.controlUrl}/${rest}`, { method: ctx.method, ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}), signal: AbortSignal.timeout(5000) });
    } catch (err) {
      throw new HttpError(502, `the control API at ${options.controlUrl} did not answer: ${(err as Error).message}`);
    }
    send(ctx, r.status, Buffer.from(await r.arrayBuffer()), r.status === 204 ? {} : { 'content-type': r.headers.get('content-type') ?? 'application/json' });
  };

  return {
    stats,
    setServers(rows) {
      servers = rows;
    },
    register(router) {
      const page = (ctx: Ctx): void =>
        send(ctx, 200, DASHBOARD_PAGE, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
          'cache-control': 'no-store',
        });
      router.add('GET', P, (ctx) => send(ctx, 301, '', { location: `${P}/` }));
      router.add('GET', `${P}/`, page);
      router.add('GET', `${P}/api/status`, (ctx) =>
        json(ctx, 200, { tracing: options.tracer.enabled, watchers: stats.watchers, sent: stats.sent, dropped: stats.dropped, recorded: recorded.size, recordDropped: recorded.dropped, control: options.controlUrl ?? null, exporters: Object.keys(options.exporters ?? {}) }),
      );
      router.add('GET', `${P}/api/servers`, (ctx) => json(ctx, 200, { servers }));
      router.add('GET', `${P}/api/events`, (ctx) => serveEventStream(ctx, options.tracer, stats, limits, recorded));
      router.add('GET', `${P}/api/pubsub`, async (ctx) => {
        const b = options.broker?.();
        if (!b) return json(ctx, 200, { running: false, topics: [], groups: [], dlq: [] });
        const snap = await pubsubSnapshot(await b, sample);
        sample = snap.sample;
        json(ctx, 200, { running: true, ...snap.view });
      });
      router.add(['GET', 'POST', 'DELETE'], `${P}/api/impair/*`, impair);
      router.add('GET', `${P}/export/:kind`, async (ctx) => {
        const kind = ctx.params[0] as keyof typeof EXPORT_TYPES;
        const what = EXPORT_TYPES[kind];
        if (!what) throw new HttpError(404, 'exports: pcapng, har');
        const exporter = options.exporters?.[kind];
        if (!exporter) throw new HttpError(501, `the ${kind} exporter (${what.module}) is not in this build yet; the trace is still on the page and in --trace-file`);
        const body = await exporter(recorded.kept());
        send(ctx, 200, body, { 'content-type': what.type, 'content-disposition': `attachment; filename="${what.file}"` });
      });
      if (options.mailStore) registerMailApi(router, `${P}/api/mail`, options.mailStore, mailLimits);
      else router.add(['GET', 'DELETE'], `${P}/api/mail/*`, () => {
        throw new HttpError(404, 'no mail store: the mail servers are not running (wirelab up without --only, or --only smtp,imap,pop3)');
      });
    },
  };
}

/** The router of a running wirelab HTTP server (undefined for any other server). */
export function routerOf(server: RunningServer): Router | undefined {
  return (server as { router?: Router }).router;
}
