/**
 * The registry's REST API, compatible with the core of Confluent Schema Registry's (the routes below, its JSON
 * bodies, its `error_code`s), on servers/http (its limits, tracing and TLS). A Confluent client pointed at it
 * registers, looks up and fetches schemas as it would there.
 */
import { NOOP_TRACER, type Tracer } from '../../core/trace/index.ts';
import type { TlsSettings } from '../../core/tls/index.ts';
import { WirelabError } from '../../core/errors.ts';
import { json, readBody, startHttpServer, type Ctx, type Router, type RunningHttpServer } from '../../servers/http/index.ts';
import { SchemaRegistry, SchemaRegistryError, type SchemaRegistryOptions } from './registry.ts';

export const SCHEMA_REGISTRY_ROUTES: ReadonlyArray<{ method: string; path: string; does: string }> = [
  { method: 'GET', path: '/subjects', does: 'subjects' },
  { method: 'POST', path: '/subjects/:subject/versions', does: 'register {"schema", "schemaType"?} -> {"id"} (409 when incompatible)' },
  { method: 'GET', path: '/subjects/:subject/versions', does: 'its versions' },
  { method: 'GET', path: '/subjects/:subject/versions/:version', does: 'one version ("latest" works) -> {subject, version, id, schema}' },
  { method: 'GET', path: '/subjects/:subject/versions/:version/schema', does: 'the schema text alone' },
  { method: 'POST', path: '/subjects/:subject', does: 'is this schema registered here? -> {subject, version, id, schema}' },
  { method: 'DELETE', path: '/subjects/:subject', does: 'delete the subject -> its versions' },
  { method: 'GET', path: '/schemas/ids/:id', does: 'a schema by id -> {schema}' },
  { method: 'GET', path: '/schemas/types', does: 'schema types: AVRO, JSON' },
  { method: 'POST', path: '/compatibility/subjects/:subject/versions/:version', does: '-> {is_compatible} (?verbose=true adds messages)' },
  { method: 'GET', path: '/config', does: 'the global level -> {compatibilityLevel}' },
  { method: 'PUT', path: '/config', does: 'set it: {"compatibility": "BACKWARD"|...|"NONE"}' },
  { method: 'GET', path: '/config/:subject', does: "a subject's level" },
  { method: 'PUT', path: '/config/:subject', does: "set a subject's level" },
];

export interface SchemaRegistryServerOptions extends SchemaRegistryOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port); `wirelab up` uses base + 8081, Confluent's port. */
  port?: number;
  /** An open registry to serve (its own options are then ignored). Default: one opened from these options. */
  registry?: SchemaRegistry;
  tls?: TlsSettings | boolean;
  /** Request bodies at most. Default 1 MiB. */
  maxBodyBytes?: number;
  tracer?: Tracer;
}

export interface RunningSchemaRegistry extends RunningHttpServer {
  readonly registry: SchemaRegistry;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const reply = (ctx: Ctx, status: number, body: unknown): void => json(ctx, status, body, { 'content-type': CONTENT_TYPE });

function subjectOf(ctx: Ctx, i = 0): string {
  try {
    return decodeURIComponent(ctx.params[i] ?? '');
  } catch {
    throw new SchemaRegistryError('WL_ERR_SCHEMA_INVALID', 422, 42201, 'the subject is not valid percent-encoding');
  }
}

function versionOf(raw: string | undefined): number | 'latest' {
  if (raw === 'latest' || raw === '-1') return 'latest';
  if (raw !== undefined && /^\d{1,9}$/.test(raw)) return Number(raw);
  throw new SchemaRegistryError('WL_ERR_SCHEMA_INVALID', 422, 42202, `version must be a positive integer or "latest", got ${JSON.stringify(String(raw).slice(0, 40))}`);
}

async function bodyOf(ctx: Ctx): Promise<Record<string, unknown>> {
  const raw = await readBody(ctx);
  let v: unknown;
  try {
    v = raw.length ? JSON.parse(raw.toString('utf8')) : {};
  } catch {
    throw new SchemaRegistryError('WL_ERR_SCHEMA_INVALID', 422, 42201, 'the body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SchemaRegistryError('WL_ERR_SCHEMA_INVALID', 422, 42201, 'the body is a JSON object');
  return v as Record<string, unknown>;
}

/** A RegisteredSchema as Confluent writes it: schemaType left out for AVRO. */
function view(s: { subject: string; version: number; id: number; schemaType: string; schema: string }): Record<string, unknown> {
  return { subject: s.subject, version: s.version, id: s.id, ...(s.schemaType === 'AVRO' ? {} : { schemaType: s.schemaType }), schema: s.schema };
}

export async function startSchemaRegistry(options: SchemaRegistryServerOptions = {}): Promise<RunningSchemaRegistry> {
  const tracer = options.tracer ?? NOOP_TRACER;
  const registry = options.registry ?? (await SchemaRegistry.open(options));
  const route = (handler: (ctx: Ctx) => Promise<void> | void) => async (ctx: Ctx): Promise<void> => {
    try {
      await handler(ctx);
    } catch (err) {
      if (err instanceof SchemaRegistryError) {
        tracer.emit('schema-registry', ctx.cid, '<', 'refused', () => ({ summary: `${ctx.method} ${ctx.path}: ${err.status} ${err.errorCode}: ${err.message}`, meta: { status: err.status, errorCode: err.errorCode } }));
        return reply(ctx, Number(err.status), { error_code: err.errorCode, message: err.message });
      }
      if (err instanceof WirelabError && typeof err.status === 'number' && err.status < 500) {
        return reply(ctx, err.status, { error_code: err.status, message: err.message });
      }
      tracer.emit('schema-registry', ctx.cid, '<', 'error', () => ({ summary: `${ctx.method} ${ctx.path}: ${(err as Error).message}` }));
      return reply(ctx, 500, { error_code: 50001, message: `store error: ${(err as Error).message}` });
    }
  };
  const schemaOf = (body: Record<string, unknown>): [string, string] => [body.schema as string, (body.schemaType as string | undefined) ?? 'AVRO'];
  const routes = (r: Router): void => {
    r.add('GET', '/', route((ctx) => reply(ctx, 200, {})));
    r.add('GET', '/subjects', route((ctx) => reply(ctx, 200, registry.subjects())));
    r.add('POST', '/subjects/:subject/versions', route(async (ctx) => {
      const s = await registry.register(subjectOf(ctx), ...schemaOf(await bodyOf(ctx)));
      tracer.emit('schema-registry', ctx.cid, '<', 'registered', () => ({ summary: `${s.subject} v${s.version} id ${s.id}${s.existed ? ' (already registered)' : ''}`, meta: { subject: s.subject, version: s.version, id: s.id } }));
      reply(ctx, 200, { id: s.id });
    }));
    r.add('GET', '/subjects/:subject/versions', route((ctx) => reply(ctx, 200, registry.versions(subjectOf(ctx)))));
    r.add('GET', '/subjects/:subject/versions/:version', route((ctx) => reply(ctx, 200, view(registry.get(subjectOf(ctx), versionOf(ctx.params[1]))))));
    r.add('GET', '/subjects/:subject/versions/:version/schema', route((ctx) => reply(ctx, 200, JSON.parse(registry.get(subjectOf(ctx), versionOf(ctx.params[1])).schema))));
    r.add('POST', '/subjects/:subject', route(async (ctx) => reply(ctx, 200, view(registry.lookup(subjectOf(ctx), ...schemaOf(await bodyOf(ctx)))))));
    r.add('DELETE', '/subjects/:subject', route(async (ctx) => reply(ctx, 200, await registry.deleteSubject(subjectOf(ctx)))));
    r.add('GET', '/schemas/types', route((ctx) => reply(ctx, 200, ['AVRO', 'JSON'])));
    r.add('GET', '/schemas/ids/:id', route((ctx) => {
      const raw = ctx.params[0] ?? '';
      const s = registry.byId(/^\d{1,9}$/.test(raw) ? Number(raw) : -1);
      reply(ctx, 200, { ...(s.schemaType === 'AVRO' ? {} : { schemaType: s.schemaType }), schema: s.schema });
    }));
    r.add('POST', '/compatibility/subjects/:subject/versions/:version', route(async (ctx) => {
      const issues = registry.check(subjectOf(ctx), ...schemaOf(await bodyOf(ctx)), versionOf(ctx.params[1]));
      const verbose = ctx.url.searchParams.get('verbose') === 'true';
      reply(ctx, 200, { is_compatible: issues.length === 0, ...(verbose ? { messages: issues } : {}) });
    }));
    r.add('GET', '/config', route((ctx) => reply(ctx, 200, { compatibilityLevel: registry.compatibility() })));
    r.add('PUT', '/config', route(async (ctx) => reply(ctx, 200, { compatibility: await registry.setCompatibility(undefined, (await bodyOf(ctx)).compatibility as string) })));
    r.add('GET', '/config/:subject', route((ctx) => {
      const level = registry.subjectCompatibility(subjectOf(ctx));
      if (!level) throw new SchemaRegistryError('WL_ERR_SCHEMA_NOT_FOUND', 404, 40408, `subject ${JSON.stringify(subjectOf(ctx))} has no compatibility level of its own`);
      reply(ctx, 200, { compatibilityLevel: level });
    }));
    r.add('PUT', '/config/:subject', route(async (ctx) => reply(ctx, 200, { compatibility: await registry.setCompatibility(subjectOf(ctx), (await bodyOf(ctx)).compatibility as string) })));
  };
  const server = await startHttpServer({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    ...(options.tls ? { tls: options.tls } : {}),
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    tracer,
    playground: false,
    routes: [routes],
  });
  return Object.assign(server, { registry }) as RunningSchemaRegistry;
}
