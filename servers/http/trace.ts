import type { ServerResponse } from 'node:http';
import { redactLine, type Tracer } from '../../core/trace/index.ts';
import type { Req, Res } from './context.ts';
import { round } from '../../core/stats.ts';
import { BodyCollector, TRACED_BODY_MAX_BYTES, tracedBody, type HttpExchange } from '../../core/export/har.ts';
import { socketOf } from './h2-wire.ts';

/** Request bodies read by readBody while tracing is on, for the `done` event's HAR exchange. */
const requestBodies = new WeakMap<object, { body: Buffer; at: number }>();

/** Called by readBody when tracing is on: the body (the exchange keeps its first TRACED_BODY_MAX_BYTES). */
export function noteRequestBody(req: Req, body: Buffer): void {
  requestBodies.set(req, { body, at: performance.now() });
}

/**
 * The header lines a writeHead call sent, redacted: the ones set before (getHeaders) and the ones passed to it (node
 * writes an object passed to writeHead without storing it when none was set before, so getHeaders alone can miss them).
 */
function headLines(r: ServerResponse, args: unknown[]): string[] {
  const all: Record<string, unknown> = { ...r.getHeaders() };
  const passed = args.find((a, i) => i > 0 && a !== null && typeof a === 'object');
  if (Array.isArray(passed)) {
    for (let i = 0; i + 1 < passed.length; i += 2) all[String(passed[i]).toLowerCase()] = passed[i + 1];
  } else if (passed) {
    for (const [k, v] of Object.entries(passed)) all[k.toLowerCase()] = v;
  }
  const lines: string[] = [];
  for (const [k, v] of Object.entries(all)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) lines.push(redactLine(`${k}: ${String(one)}`));
  }
  return lines;
}

function firstHeader(v: string | string[] | number | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v === undefined ? undefined : String(v);
}

/** Header lines as they may appear in a trace (Authorization, Cookie, Set-Cookie redacted). */
export function redactedHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push(redactLine(`${raw[i]}: ${raw[i + 1]}`));
  return out;
}

/** Traces the request line and headers as the server parsed them. */
export function traceRequest(tracer: Tracer, cid: string, req: Req): void {
  tracer.emit('http', cid, '>', 'request', () => {
    const line = `${req.method} ${req.url} HTTP/${req.httpVersion}`;
    // Only the line for a tracer that shows summaries (the terminal): the header list is built for the ones that keep it.
    if (tracer.detail === false) return line;
    const headers = redactedHeaders(req.rawHeaders);
    return { summary: line, meta: { method: req.method, url: req.url, httpVersion: req.httpVersion, headers } };
  });
}

/**
 * Traces the response when tracing is on: the status line and headers when they are written (first byte), then the
 * timing per phase when it is done. The response's own writeHead is wrapped on this one object only, and only when
 * tracing is on, so a server with tracing off runs node's code untouched.
 */
export function traceResponse(tracer: Tracer, cid: string, req: Req, res: Res, startedAt: number): void {
  // A tracer that shows summaries only (the terminal) gets the same events without the header list, the captured body
  // and the HAR exchange, and write / end stay untouched: those cost more than the rest of the tracing together.
  const detail = tracer.detail !== false;
  const r = res as ServerResponse;
  const original = r.writeHead;
  let headAt = 0;
  let sentHeaders: string[] = [];
  const socket = req.socket;
  const bytesBefore = req.httpVersionMajor === 1 ? (socket?.bytesWritten ?? 0) : 0;
  const startedDate = Date.now();
  const resBody = detail ? new BodyCollector() : undefined;
  if (resBody) {
    const originalWrite = r.write;
    const originalEnd = r.end;
    // Copies what the handler writes (up to the cap) for the HAR exchange; only installed when tracing is on.
    let ending = false;
    r.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      // HTTP/2's end(chunk) calls write(chunk) itself: counted once, in end.
      if (!ending && (typeof chunk === 'string' || chunk instanceof Uint8Array)) resBody.add(chunk);
      return (originalWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as ServerResponse['write'];
    r.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (!ending && (typeof chunk === 'string' || chunk instanceof Uint8Array)) resBody.add(chunk);
      ending = true;
      return (originalEnd as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } as ServerResponse['end'];
  }
  r.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
    headAt = performance.now();
    const result = original.apply(this, args);
    if (detail) sentHeaders = headLines(r, args);
    tracer.emit('http', cid, '<', 'response', () => {
      // HTTP/2 has no reason phrase (reading statusMessage there prints an UnsupportedWarning).
      const summary = `${r.statusCode} ${req.httpVersionMajor === 2 ? '' : (r.statusMessage ?? '')}`.trimEnd() + ` ← ${req.method} ${req.url}`;
      return detail ? { summary, meta: { status: r.statusCode, headers: sentHeaders, firstByteMs: round(headAt - startedAt) } } : summary;
    });
    return result;
  } as ServerResponse['writeHead'];
  r.once('close', () => {
    const done = performance.now();
    tracer.emit('http', cid, '*', 'done', () => ({
      summary: `${r.statusCode} ${req.method} ${req.url}: first byte ${round((headAt || done) - startedAt)} ms, done ${round(done - startedAt)} ms${r.writableFinished ? '' : ' (aborted)'}`,
      ...(req.httpVersionMajor === 1 ? { bytes: (socket?.bytesWritten ?? 0) - bytesBefore } : {}),
      ...(resBody
        ? {
            meta: {
              status: r.statusCode,
              firstByteMs: round((headAt || done) - startedAt),
              doneMs: round(done - startedAt),
              finished: r.writableFinished,
              exchange: serverExchange(req, r, cid, sentHeaders, { startedDate, startedAt, headAt: headAt || done, done }, resBody),
            },
          }
        : {}),
    }));
  });
}

/** The server's side of one exchange for HAR: what it parsed and answered, its phases from the request's arrival. */
function serverExchange(req: Req, r: ServerResponse, cid: string, responseHeaders: string[], at: { startedDate: number; startedAt: number; headAt: number; done: number }, resBody: BodyCollector): HttpExchange {
  const { startedDate, startedAt, headAt, done } = at;
  const h2 = req.httpVersionMajor === 2;
  const scheme = h2 ? ((req as { scheme?: string }).scheme ?? 'https') : (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http';
  const host = h2 ? ((req as { authority?: string }).authority ?? req.headers.host) : req.headers.host;
  const reqBody = requestBodies.get(req);
  const bodyAt = reqBody ? Math.min(reqBody.at, headAt) : startedAt;
  const requestBody = reqBody && reqBody.body.length > 0 ? tracedBody(reqBody.body.subarray(0, TRACED_BODY_MAX_BYTES), reqBody.body.length, firstHeader(req.headers['content-type'])) : undefined;
  const type = responseHeaders.find((l) => /^content-type:/i.test(l))?.slice('content-type:'.length).trim();
  const responseBody = req.method === 'HEAD' ? undefined : resBody.traced(type);
  return {
    side: 'server',
    startedDateTime: new Date(startedDate).toISOString(),
    method: req.method ?? 'GET',
    url: `${scheme}://${host ?? `${socketOf(req)?.localAddress}:${socketOf(req)?.localPort}`}${req.url}`,
    httpVersion: h2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`,
    status: r.statusCode,
    statusText: h2 ? '' : (r.statusMessage ?? ''),
    requestHeaders: redactedHeaders(req.rawHeaders),
    responseHeaders,
    ...(requestBody ? { requestBody } : {}),
    ...(responseBody ? { responseBody } : {}),
    // From the parsed request head: reading the body (send), the handler until the head (wait), the body out (receive).
    timings: { blocked: -1, dns: -1, connect: -1, ssl: -1, send: round(bodyAt - startedAt), wait: round(headAt - bodyAt), receive: round(done - headAt) },
    connection: cid,
    ...(socketOf(req)?.localAddress ? { serverIPAddress: socketOf(req)!.localAddress } : {}),
  };
}
