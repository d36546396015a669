import type { ServerResponse } from 'node:http';
import { redactLine, type Tracer } from '../../core/trace/index.ts';
import type { Req, Res } from './context.ts';
import { round } from '../../core/stats.ts';

/** Header lines as they may appear in a trace (Authorization, Cookie, Set-Cookie redacted). */
export function redactedHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push(redactLine(`${raw[i]}: ${raw[i + 1]}`));
  return out;
}

/** Traces the request line and headers as the server parsed them. */
export function traceRequest(tracer: Tracer, cid: string, req: Req): void {
  tracer.emit('http', cid, '>', 'request', () => {
    const headers = redactedHeaders(req.rawHeaders);
    const line = `${req.method} ${req.url} HTTP/${req.httpVersion}`;
    return { summary: line, meta: { method: req.method, url: req.url, httpVersion: req.httpVersion, headers } };
  });
}

/**
 * Traces the response when tracing is on: the status line and headers when they are written (first byte), then the
 * timing per phase when it is done. The response's own writeHead is wrapped on this one object only, and only when
 * tracing is on, so a server with tracing off runs node's code untouched.
 */
export function traceResponse(tracer: Tracer, cid: string, req: Req, res: Res, startedAt: number): void {
  const r = res as ServerResponse;
  const original = r.writeHead;
  let headAt = 0;
  const socket = req.socket;
  const bytesBefore = req.httpVersionMajor === 1 ? (socket?.bytesWritten ?? 0) : 0;
  r.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
    headAt = performance.now();
    const result = original.apply(this, args);
    tracer.emit('http', cid, '<', 'response', () => {
      const headers: string[] = [];
      for (const [k, v] of Object.entries(r.getHeaders())) {
        for (const one of Array.isArray(v) ? v : [v]) headers.push(redactLine(`${k}: ${one}`));
      }
      return {
        // HTTP/2 has no reason phrase (reading statusMessage there prints an UnsupportedWarning).
        summary: `${r.statusCode} ${req.httpVersionMajor === 2 ? '' : (r.statusMessage ?? '')}`.trimEnd() + ` ← ${req.method} ${req.url}`,
        meta: { status: r.statusCode, headers, firstByteMs: round(headAt - startedAt) },
      };
    });
    return result;
  } as ServerResponse['writeHead'];
  r.once('close', () => {
    const done = performance.now();
    tracer.emit('http', cid, '*', 'done', () => ({
      summary: `${r.statusCode} ${req.method} ${req.url}: first byte ${round((headAt || done) - startedAt)} ms, done ${round(done - startedAt)} ms${r.writableFinished ? '' : ' (aborted)'}`,
      ...(req.httpVersionMajor === 1 ? { bytes: (socket?.bytesWritten ?? 0) - bytesBefore } : {}),
      meta: { status: r.statusCode, firstByteMs: round((headAt || done) - startedAt), doneMs: round(done - startedAt), finished: r.writableFinished },
    }));
  });
}
