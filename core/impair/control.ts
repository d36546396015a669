import http from 'node:http';
import { ErrorCodes, HttpError, WirelabError } from '../errors.ts';
import { checkInt, checkPort, checkString, withDefaults } from '../options.ts';
import { DEFAULT_HOST, listenTcp, SocketSet, type RunningServer } from '../server.ts';
import { NOOP_TRACER, type Tracer, type WireMask } from '../trace/index.ts';
import { startTcpProxy, type TcpImpairmentProxy } from './tcp/proxy.ts';
import type { UdpImpairmentRelay } from './udp/relay.ts';

export interface ControlApiOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0; Toxiproxy's is 8474. */
  port?: number;
  /** Largest request body; past it the answer is 413. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Proxies created through POST /proxies, at most. Default 64. */
  maxProxies?: number;
  tracer?: Tracer;
  /**
   * The secret mask for a proxy created through the API, by its upstream (a server's own `wireMask`: the MQTT door's
   * masks the CONNECT password). Undefined, or a function that answers undefined: text lines are masked.
   */
  wireMaskFor?: (host: string, port: number) => (() => WireMask) | undefined;
}

/** A server whose injected failures can be read and replaced at run time (`wirelab up`'s IMAP, POP3, FTP, SMTP). */
export interface ChaosTarget {
  /** The rules in force (with a toJSON), when the server keeps them. */
  chaos?: unknown;
  /** Replaces the rules; throws (a TypeError naming the field) for a bad one, leaving the old ones in force. */
  setChaos(chaos: unknown): void;
}

export interface RunningControlApi extends RunningServer {
  readonly proxies: Map<string, TcpImpairmentProxy>;
  readonly relays: Map<string, UdpImpairmentRelay>;
  /** Servers whose chaos the API sets: GET /servers, GET and POST /servers/<name>/chaos. */
  readonly servers: Map<string, ChaosTarget>;
}

function hostPort(v: unknown, what: string): { host: string; port: number } {
  const m = typeof v === 'string' ? /^(.+):(\d+)$/.exec(v) : null;
  if (!m) throw new HttpError(400, `${what} must be "host:port", got ${JSON.stringify(v)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new HttpError(400, `${what} port must be 0 to 65535, got ${port}`);
  return { host: m[1]!, port };
}

/** Every default of ControlApiOptions. */
export const CONTROL_API_DEFAULTS = Object.freeze({ host: DEFAULT_HOST, port: 0, maxBodyBytes: 64 * 1024, maxProxies: 64 });

/**
 * The HTTP control API, after Toxiproxy's (same paths and JSON, so its clients work for TCP), plus /relays for the
 * UDP relays. Proxies and relays started elsewhere (a lab, `wirelab up --impair`) are added to its maps.
 */
export async function startControlApi(options: ControlApiOptions = {}): Promise<RunningControlApi> {
  const o = withDefaults(CONTROL_API_DEFAULTS, options);
  const host = checkString('host', o.host);
  const port = checkPort('port', o.port);
  const maxBody = checkInt('maxBodyBytes', o.maxBodyBytes, 1, 16 * 1024 * 1024);
  const maxProxies = checkInt('maxProxies', o.maxProxies, 0, 10_000);
  const tracer = o.tracer ?? NOOP_TRACER;
  const proxies = new Map<string, TcpImpairmentProxy>();
  const relays = new Map<string, UdpImpairmentRelay>();
  const servers = new Map<string, ChaosTarget>();
  /** The last rules set through the API, for a server that does not report its own. */
  const lastSet = new Map<string, unknown>();
  const target = (name: string): ChaosTarget => {
    const s = servers.get(name);
    if (!s) throw new HttpError(404, `no server ${name}; servers: ${[...servers.keys()].join(', ') || 'none'}`);
    return s;
  };
  const chaosOf = (name: string): unknown => target(name).chaos ?? lastSet.get(name) ?? {};
  const created = new Set<TcpImpairmentProxy>();

  const proxy = (name: string): TcpImpairmentProxy => {
    const p = proxies.get(name);
    if (!p) throw new HttpError(404, `no proxy ${name}`);
    return p;
  };
  const relay = (name: string): UdpImpairmentRelay => {
    const r = relays.get(name);
    if (!r) throw new HttpError(404, `no relay ${name}`);
    return r;
  };
  const all = <T extends { toJSON(): Record<string, unknown> }>(m: Map<string, T>): Record<string, unknown> =>
    Object.fromEntries([...m].map(([k, v]) => [k, v.toJSON()]));

  const create = async (body: unknown): Promise<TcpImpairmentProxy> => {
    const b = (body ?? {}) as { name?: unknown; listen?: unknown; upstream?: unknown; enabled?: unknown };
    if (typeof b.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(b.name)) throw new HttpError(400, 'name must be 1 to 64 letters, digits, _ . or -');
    if (proxies.has(b.name)) throw new HttpError(409, `proxy ${b.name} already exists`);
    const listen = hostPort(b.listen ?? `${DEFAULT_HOST}:0`, 'listen');
    const up = hostPort(b.upstream, 'upstream');
    if (created.size >= maxProxies) throw new HttpError(429, `maxProxies=${maxProxies} reached`);
    const wireMask = options.wireMaskFor?.(up.host, up.port);
    const p = await startTcpProxy({ name: b.name, host: listen.host, port: listen.port, upstreamHost: up.host, upstreamPort: up.port, tracer, ...(wireMask ? { wireMask } : {}) });
    proxies.set(p.name, p);
    created.add(p);
    if (b.enabled === false) await p.setEnabled(false);
    return p;
  };
  const remove = async (name: string): Promise<void> => {
    const p = proxy(name);
    proxies.delete(name);
    created.delete(p);
    await p.close();
  };

  type Handler = (params: string[], body: unknown) => Promise<[number, unknown]> | [number, unknown];
  const routes: Array<[string, RegExp, Handler]> = [
    ['GET', /^\/version$/, () => [200, { version: 'wirelab (Toxiproxy-compatible API)' }]],
    ['GET', /^\/proxies$/, () => [200, all(proxies)]],
    ['POST', /^\/proxies$/, async (_, body) => [201, (await create(body)).toJSON()]],
    // Toxiproxy's /populate: creates the proxies listed, replacing any of the same name.
    ['POST', /^\/populate$/, async (_, body) => {
      if (!Array.isArray(body)) throw new HttpError(400, 'populate takes a JSON array of proxies');
      const out: unknown[] = [];
      for (const item of body as Array<{ name?: unknown }>) {
        if (typeof item?.name === 'string' && proxies.has(item.name)) await remove(item.name);
        out.push((await create(item)).toJSON());
      }
      return [201, { proxies: out }];
    }],
    ['GET', /^\/proxies\/([^/]+)$/, ([n]) => [200, proxy(n!).toJSON()]],
    // Toxiproxy's proxy update: `enabled` and `upstream` may change; `listen` may not.
    ['POST', /^\/proxies\/([^/]+)$/, async ([n], body) => {
      const p = proxy(n!);
      const b = (body ?? {}) as { enabled?: unknown; upstream?: unknown; listen?: unknown };
      if (b.enabled !== undefined && typeof b.enabled !== 'boolean') throw new HttpError(400, 'enabled must be true or false');
      if (b.listen !== undefined && b.listen !== `${p.host}:${p.port}`) throw new HttpError(400, 'listen cannot change; delete the proxy and create it again');
      if (b.upstream !== undefined) {
        const up = hostPort(b.upstream, 'upstream');
        p.setUpstream(up.host, up.port);
      }
      if (typeof b.enabled === 'boolean') await p.setEnabled(b.enabled);
      return [200, p.toJSON()];
    }],
    ['DELETE', /^\/proxies\/([^/]+)$/, async ([n]) => {
      await remove(n!);
      return [204, undefined];
    }],
    ['GET', /^\/proxies\/([^/]+)\/toxics$/, ([n]) => [200, proxy(n!).toxics]],
    ['POST', /^\/proxies\/([^/]+)\/toxics$/, ([n], body) => [200, proxy(n!).addToxic(body as never)]],
    ['GET', /^\/proxies\/([^/]+)\/toxics\/([^/]+)$/, ([n, t]) => {
      const toxic = proxy(n!).toxics.find((x) => x.name === t);
      if (!toxic) throw new HttpError(404, `no toxic ${t} on ${n}`);
      return [200, toxic];
    }],
    ['POST', /^\/proxies\/([^/]+)\/toxics\/([^/]+)$/, ([n, t], body) => [200, proxy(n!).updateToxic(t!, body)]],
    ['DELETE', /^\/proxies\/([^/]+)\/toxics\/([^/]+)$/, ([n, t]) => {
      proxy(n!).removeToxic(t!);
      return [204, undefined];
    }],
    ['POST', /^\/reset$/, () => {
      for (const p of proxies.values()) p.clearToxics();
      for (const r of relays.values()) r.clear();
      return [204, undefined];
    }],
    ['GET', /^\/servers$/, () => [200, Object.fromEntries([...servers.keys()].map((n) => [n, { chaos: chaosOf(n) }]))]],
    ['GET', /^\/servers\/([^/]+)\/chaos$/, ([n]) => [200, chaosOf(n!)]],
    ['POST', /^\/servers\/([^/]+)\/chaos$/, ([n], body) => {
      const s = target(n!);
      try {
        s.setChaos(body);
      } catch (err) {
        throw new HttpError(400, (err as Error).message);
      }
      lastSet.set(n!, body);
      tracer.emit('impair', 'control', '*', 'chaos', () => `${n}: chaos set to ${JSON.stringify(body).slice(0, 200)}`);
      return [200, chaosOf(n!)];
    }],
    ['GET', /^\/relays$/, () => [200, all(relays)]],
    ['GET', /^\/relays\/([^/]+)$/, ([n]) => [200, relay(n!).toJSON()]],
    ['POST', /^\/relays\/([^/]+)\/impairments$/, ([n], body) => {
      const r = relay(n!);
      const b = (body ?? {}) as { stream?: unknown };
      if (b.stream !== 'upstream' && b.stream !== 'downstream') throw new HttpError(400, 'stream must be upstream or downstream');
      r.set(b.stream, body as never);
      return [200, r.toJSON()];
    }],
  ];

  const sockets = new SocketSet();
  const server = http.createServer(async (req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = body === undefined ? '' : JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      tracer.emit('impair', 'control', '<', 'response', () => `${req.method} ${req.url} → ${status}`);
    };
    try {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const matching = routes.filter(([, re]) => re.test(path));
      if (matching.length === 0) throw new HttpError(404, `no route ${path}`);
      const route = matching.find(([m]) => m === req.method);
      if (!route) throw new HttpError(405, `${req.method} not allowed on ${path}; allowed: ${matching.map(([m]) => m).join(', ')}`);
      const body = req.method === 'POST' ? await readJson(req, maxBody) : undefined;
      const params = route[1].exec(path)!.slice(1).map(decodeURIComponent);
      const [status, out] = await route[2](params, body);
      send(status, out);
    } catch (err) {
      const status = err instanceof WirelabError && typeof err.status === 'number' ? err.status : 500;
      const code = err instanceof WirelabError ? err.code : undefined;
      tracer.emit('impair', 'control', '*', 'error', () => `${req.method} ${req.url}: ${status} ${(err as Error).message}`);
      if (status === 413) res.setHeader('connection', 'close');
      send(status, { error: (err as Error).message, status, ...(code ? { code } : {}) });
    }
  });
  server.on('connection', (s) => sockets.add(s));
  const bound = await listenTcp(server, port, host);
  tracer.emit('impair', 'control', '*', 'listen', () => `control API on http://${host}:${bound}`);
  return {
    proto: 'http',
    host,
    port: bound,
    url: `http://${host}:${bound}`,
    proxies,
    relays,
    servers,
    close: async () => {
      for (const p of created) await p.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        sockets.destroyAll();
      });
    },
  };
}

function readJson(req: http.IncomingMessage, max: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.pause();
        reject(new HttpError(413, `request body over maxBodyBytes=${max}`, { code: ErrorCodes.HTTP_BODY_TOO_LARGE }));
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (size > max) return;
      const text = Buffer.concat(parts).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'the body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

