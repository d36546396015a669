import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { ErrorCodes } from '../../core/errors.ts';
import type { Tracer } from '../../core/trace/index.ts';
import type { EventFeed } from './feed.ts';
import { HttpError } from './limits.ts';
import { noteRequestBody } from './trace.ts';
import type { ResolvedHttpOptions } from './options.ts';
import { socketOf } from './h2-wire.ts';

export type Req = IncomingMessage | Http2ServerRequest;
export type Res = ServerResponse | Http2ServerResponse;

/** What a server keeps between requests: the playground's resources, its feed, counters. */
export interface ServerState {
  readonly options: ResolvedHttpOptions;
  readonly tracer: Tracer;
  readonly feed: EventFeed;
  /** /resources: id → JSON body, the state that PUT replaces and POST adds to. */
  readonly resources: Map<string, unknown>;
  nextResourceId: number;
  /** When the server started: /cache's Last-Modified. */
  readonly startedAt: Date;
  /** Base URL, e.g. http://127.0.0.1:7080 (set once listening). */
  origin: string;
  /** Upstream for /gateway (a deliberately slow server of our own), started on first use. */
  upstream?: Promise<{ port: number; close(): Promise<void> }>;
}

export interface Ctx {
  readonly req: Req;
  readonly res: Res;
  readonly method: string;
  /** The request target as a URL against the server's origin (parsed on first use: most routes never need it). */
  readonly url: URL;
  /** The path of the request target, query left out. */
  readonly path: string;
  /** The route's :params and * in order. */
  readonly params: string[];
  readonly state: ServerState;
  readonly h2: boolean;
  readonly cid: string;
  /** Aborts when the response closes (sent, or the client went away); made on first use. */
  readonly signal: AbortSignal;
}

/** A request's context. The URL is parsed only when a handler asks for it: routing needs the path alone. */
export class RequestContext implements Ctx {
  params: string[] = [];
  readonly h2: boolean;
  #url?: URL;
  #path?: string;
  #signal?: AbortSignal;

  constructor(
    readonly req: Req,
    readonly res: Res,
    readonly method: string,
    readonly state: ServerState,
    readonly cid: string,
  ) {
    this.h2 = req.httpVersionMajor === 2;
  }

  get signal(): AbortSignal {
    if (!this.#signal) {
      const ac = new AbortController();
      this.#signal = ac.signal;
      if (this.res.closed) ac.abort();
      else this.res.once('close', () => ac.abort());
    }
    return this.#signal;
  }

  get url(): URL {
    if (!this.#url) {
      try {
        this.#url = new URL(this.req.url ?? '/', this.state.origin);
      } catch {
        this.#url = new URL('/', this.state.origin);
      }
    }
    return this.#url;
  }

  get path(): string {
    if (this.#path === undefined) {
      const raw = this.req.url ?? '/';
      // origin-form ("/a/b?q") is cut at the query; anything else (absolute-form, "*") goes through the URL parser.
      const q = raw.indexOf('?');
      const p = raw.charCodeAt(0) === 47 ? (q === -1 ? raw : raw.slice(0, q)) : this.url.pathname;
      this.#path = p.includes('%') || p.includes('/.') || p.includes('\\') ? this.url.pathname : p;
    }
    return this.#path;
  }
}

/** Writes a whole answer. Headers set on `res` before stay; a HEAD request gets the headers without the body. */
export function send(ctx: Ctx, status: number, body: string | Buffer, headers: Record<string, string | number | string[]> = {}): void {
  const res = ctx.res as ServerResponse;
  // 204 and 304 carry no body and no Content-Length (RFC 9110 8.6).
  if (status === 204 || status === 304) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.length, ...headers });
  res.end(ctx.method === 'HEAD' ? undefined : body);
}

export function json(ctx: Ctx, status: number, value: unknown, headers: Record<string, string | number | string[]> = {}): void {
  send(ctx, status, JSON.stringify(value, null, 2) + '\n', { 'content-type': 'application/json', ...headers });
}

/** An error answer: a small JSON body saying why, with the headers that matter (Allow, Retry-After, ...). */
export function problem(ctx: Ctx, status: number, detail: string, headers: Record<string, string> = {}): void {
  if (status === 204) return send(ctx, 204, '', headers);
  json(ctx, status, { status, error: STATUS_TEXT[status] ?? 'Error', detail }, headers);
}

/** Reads the whole body, stopping at maxBodyBytes with 413 (a declared Content-Length over it is refused unread). */
export function readBody(ctx: Ctx): Promise<Buffer> {
  const max = ctx.state.options.maxBodyBytes;
  const declared = Number(ctx.req.headers['content-length'] ?? NaN);
  if (declared > max) return Promise.reject(tooLarge(declared, max, 'declared'));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const req = ctx.req as IncomingMessage;
    req.on('data', (chunk: Buffer) => {
      n += chunk.length;
      if (n > max) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge(n, max, 'streamed'));
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => {
      const body = Buffer.concat(parts, n);
      if (ctx.state.tracer.enabled) noteRequestBody(ctx.req, body);
      resolve(body);
    });
    req.on('error', reject);
  });
}

function tooLarge(n: number, max: number, how: string): HttpError {
  return new HttpError(413, `body of ${n} B (${how}) exceeds maxBodyBytes=${max}`, { code: ErrorCodes.HTTP_BODY_TOO_LARGE, closeConnection: true });
}

/** The client's address as the server sees it (for /ip and the per-client rate limit). */
export function clientAddress(req: Req): string {
  return socketOf(req)?.remoteAddress ?? 'unknown';
}

export function headerValue(req: Req, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export const STATUS_TEXT: Record<number, string> = {
  100: 'Continue',
  101: 'Switching Protocols',
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  206: 'Partial Content',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  411: 'Length Required',
  413: 'Content Too Large',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  418: "I'm a teapot",
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};
