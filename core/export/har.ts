/**
 * HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) from trace events: every HTTP exchange the HTTP server or
 * the HTTP client traced (their `done` events carry `meta.exchange`), each entry saying which side saw it in `_side`
 * and `comment`. Chrome DevTools' Network panel imports the file (Import HAR).
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.ts';
import { MemorySink, type TraceEvent, type TraceSink } from '../trace/index.ts';
import type { TracedBody } from './body.ts';

export { BodyCollector, TRACED_BODY_MAX_BYTES, redactBodyText, tracedBody, type TracedBody } from './body.ts';

/** Phases in milliseconds as HAR names them; -1 where the phase did not happen (a reused connection has no connect). */
export interface HarTimings {
  blocked: number;
  dns: number;
  connect: number;
  ssl: number;
  send: number;
  wait: number;
  receive: number;
}

/** What one side of an HTTP exchange records in its `done` event's `meta.exchange` (built only when tracing is on). */
export interface HttpExchange {
  side: 'client' | 'server';
  /** ISO 8601 time the request started. */
  startedDateTime: string;
  method: string;
  url: string;
  /** 'HTTP/1.1' or 'HTTP/2'. */
  httpVersion: string;
  status: number;
  statusText: string;
  /** "Name: value" lines, secrets already redacted. */
  requestHeaders: string[];
  responseHeaders: string[];
  requestBody?: TracedBody;
  responseBody?: TracedBody;
  timings: HarTimings;
  /** The connection's trace id. */
  connection?: string;
  serverIPAddress?: string;
}

export interface HarNameValue {
  name: string;
  value: string;
}

export interface HarEntry {
  startedDateTime: string;
  time: number;
  request: {
    method: string;
    url: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    queryString: HarNameValue[];
    postData?: { mimeType: string; text: string; comment?: string };
    headersSize: number;
    bodySize: number;
  };
  response: {
    status: number;
    statusText: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    content: { size: number; mimeType: string; text?: string; encoding?: string; comment?: string };
    redirectURL: string;
    headersSize: number;
    bodySize: number;
  };
  cache: Record<string, never>;
  timings: HarTimings;
  serverIPAddress?: string;
  connection?: string;
  comment: string;
  _side: 'client' | 'server';
}

export interface Har {
  log: {
    version: '1.2';
    creator: { name: string; version: string };
    entries: HarEntry[];
    comment?: string;
  };
}

function wirelabVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** "Name: value" lines as HAR pairs (HTTP/1.1 request lines and HTTP/2 pseudo-headers are left out). */
export function headerPairs(lines: string[]): HarNameValue[] {
  const out: HarNameValue[] = [];
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) continue; // "GET / HTTP/1.1" or ":path: /" (HTTP/2 pseudo-headers start with ':')
    out.push({ name: line.slice(0, i).trim(), value: line.slice(i + 1).trim() });
  }
  return out;
}

function queryString(url: string): HarNameValue[] {
  try {
    return [...new URL(url).searchParams].map(([name, value]) => ({ name, value }));
  } catch {
    return [];
  }
}

function headerValue(pairs: HarNameValue[], name: string): string | undefined {
  return pairs.find((p) => p.name.toLowerCase() === name)?.value;
}

/** The exchange a trace event carries, or undefined. */
export function exchangeOf(event: TraceEvent): HttpExchange | undefined {
  const x = event.meta?.exchange as HttpExchange | undefined;
  return x && typeof x === 'object' && typeof x.method === 'string' && typeof x.url === 'string' ? x : undefined;
}

function entryOf(x: HttpExchange): HarEntry {
  const reqHeaders = headerPairs(x.requestHeaders);
  const resHeaders = headerPairs(x.responseHeaders);
  const t = x.timings;
  const time = [t.blocked, t.dns, t.connect, t.send, t.wait, t.receive].reduce((a, b) => a + Math.max(0, b), 0);
  const reqBody = x.requestBody;
  const resBody = x.responseBody;
  const sideNote = x.side === 'client' ? "client side: wirelab's HTTP client (undici diagnostics channels)" : "server side: wirelab's HTTP server";
  return {
    startedDateTime: x.startedDateTime,
    time: Math.round(time * 1000) / 1000,
    request: {
      method: x.method,
      url: x.url,
      httpVersion: x.httpVersion,
      cookies: [],
      headers: reqHeaders,
      queryString: queryString(x.url),
      ...(reqBody
        ? { postData: { mimeType: reqBody.mimeType, text: reqBody.encoding ? '' : reqBody.text, ...(reqBody.truncated || reqBody.encoding ? { comment: reqBody.encoding ? `binary body of ${reqBody.size} B not shown` : `first bytes of ${reqBody.size} B` } : {}) } }
        : {}),
      headersSize: -1,
      bodySize: reqBody?.size ?? 0,
    },
    response: {
      status: x.status,
      statusText: x.statusText,
      httpVersion: x.httpVersion,
      cookies: [],
      headers: resHeaders,
      content: {
        size: resBody?.size ?? 0,
        mimeType: resBody?.mimeType ?? headerValue(resHeaders, 'content-type') ?? 'x-unknown',
        ...(resBody ? { text: resBody.text } : {}),
        ...(resBody?.encoding ? { encoding: resBody.encoding } : {}),
        ...(resBody?.truncated ? { comment: `first bytes of ${resBody.size} B (TRACED_BODY_MAX_BYTES)` } : {}),
      },
      redirectURL: headerValue(resHeaders, 'location') ?? '',
      headersSize: -1,
      bodySize: resBody?.size ?? 0,
    },
    cache: {},
    timings: { ...t },
    ...(x.serverIPAddress ? { serverIPAddress: x.serverIPAddress } : {}),
    ...(x.connection ? { connection: x.connection } : {}),
    comment: sideNote,
    _side: x.side,
  };
}

/** A HAR document of every HTTP exchange among `events`, oldest first. */
export function toHar(events: Iterable<TraceEvent>, comment?: string): Har {
  const entries: HarEntry[] = [];
  for (const e of events) {
    const x = exchangeOf(e);
    if (x) entries.push(entryOf(x));
  }
  entries.sort((a, b) => (a.startedDateTime < b.startedDateTime ? -1 : a.startedDateTime > b.startedDateTime ? 1 : 0));
  return { log: { version: '1.2', creator: { name: 'wirelab', version: wirelabVersion() }, entries, ...(comment ? { comment } : {}) } };
}

export interface HarFileSinkOptions {
  /** Exchanges kept for the file; older ones are dropped past it (and the count said in the log comment). Default 10,000. */
  maxEntries?: number;
}

/** `--har out.har`: keeps the HTTP exchanges (in a MemorySink, capped) and writes the HAR file when the tracer closes. */
export class HarFileSink implements TraceSink {
  readonly #kept: MemorySink;
  readonly #path: string;
  readonly #max: number;

  constructor(path: string, options: HarFileSinkOptions = {}) {
    this.#path = path;
    this.#max = options.maxEntries ?? 10_000;
    this.#kept = new MemorySink({ maxEvents: this.#max });
  }

  write(event: TraceEvent): void {
    if (exchangeOf(event)) this.#kept.write(event);
  }

  async close(): Promise<void> {
    const dropped = this.#kept.dropped;
    const note = dropped > 0 ? `${dropped} older exchanges left out (maxEntries=${this.#max})` : undefined;
    await writeFile(this.#path, JSON.stringify(toHar(this.#kept.events, note), null, 1) + '\n');
  }
}
