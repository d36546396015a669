import type { Ctx } from './context.ts';

export type Handler = (ctx: Ctx) => void | Promise<void>;

interface Route {
  methods: Set<string> | '*';
  handler: Handler;
}

interface PatternRoute extends Route {
  re: RegExp;
}

/** The methods the server knows; TRACE and CONNECT are answered outside the route table. */
export const KNOWN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'];

const NO_PARAMS: string[] = [];

export type Match =
  | { kind: 'route'; handler: Handler; params: string[] }
  /** The path exists but not for this method: 405 with Allow (or, for OPTIONS, 204 with Allow). */
  | { kind: 'method'; allow: string[] }
  | { kind: 'none' };

/**
 * Paths to handlers. A pattern is a literal path, with `:name` for one segment and `*` for the rest. Literal paths are
 * looked up in a Map (the common case costs one lookup); patterns are tried in the order they were added.
 * HEAD is served by the GET handler (node drops the body).
 */
export class Router {
  readonly #exact = new Map<string, Route[]>();
  readonly #patterns: PatternRoute[] = [];

  add(methods: string | string[], pattern: string, handler: Handler): this {
    const m = methods === '*' ? '*' : new Set(Array.isArray(methods) ? methods : [methods]);
    if (!pattern.includes(':') && !pattern.includes('*')) {
      const list = this.#exact.get(pattern) ?? [];
      list.push({ methods: m, handler });
      this.#exact.set(pattern, list);
    } else {
      const re = new RegExp(
        '^' +
          pattern
            .split('/')
            .map((seg) => (seg === '*' ? '(.*)' : seg.startsWith(':') ? '([^/]+)' : seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
            .join('/') +
          '$',
      );
      this.#patterns.push({ methods: m, handler, re });
    }
    return this;
  }

  /** Every method some route serves at `path` (HEAD with GET, and OPTIONS always); empty when no route has the path. */
  allowed(path: string): string[] {
    const m = this.match('\u0000', path);
    return m.kind === 'method' ? m.allow : m.kind === 'route' ? KNOWN_METHODS.filter((x) => x !== 'TRACE' && x !== 'CONNECT') : [];
  }

  match(method: string, path: string): Match {
    const wanted = method === 'HEAD' ? 'GET' : method;
    const exact = this.#exact.get(path);
    if (exact) {
      for (const r of exact) {
        if (r.methods === '*' || r.methods.has(wanted) || r.methods.has(method)) return { kind: 'route', handler: r.handler, params: NO_PARAMS };
      }
    }
    const allow = new Set<string>();
    for (const r of exact ?? []) if (r.methods !== '*') for (const m of r.methods) allow.add(m);
    for (const r of this.#patterns) {
      const hit = r.re.exec(path);
      if (!hit) continue;
      if (r.methods === '*' || r.methods.has(wanted) || r.methods.has(method)) {
        return { kind: 'route', handler: r.handler, params: hit.slice(1).map((p) => safeDecode(p ?? '')) };
      }
      for (const m of r.methods) allow.add(m);
    }
    if (allow.size === 0) return { kind: 'none' };
    if (allow.has('GET')) allow.add('HEAD');
    allow.add('OPTIONS');
    return { kind: 'method', allow: KNOWN_METHODS.filter((m) => allow.has(m)) };
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
