/**
 * The client's side of one HTTP exchange for HAR (core/export/har.ts), from undici's diagnostics channels: each phase
 * timed (blocked, connect, ssl, send, wait, receive), headers and bodies kept up to TRACED_BODY_MAX_BYTES, secrets
 * redacted. Only made for a client whose tracer is on; the body channels are subscribed only then.
 */
import diagnostics from 'node:diagnostics_channel';
import { BodyCollector, type HttpExchange } from '../core/export/har.ts';
import { round } from '../core/stats.ts';

export class ExchangeRecord {
  readonly createdAt = performance.now();
  readonly startedDate = Date.now();
  sentHeadersAt = 0;
  bodySentAt = 0;
  headersAt = 0;
  connectMs = -1;
  tlsMs = -1;
  method = 'GET';
  url = '';
  h2 = false;
  status = 0;
  statusText = '';
  requestHeaders: string[] = [];
  responseHeaders: string[] = [];
  connection = '';
  serverIPAddress = '';
  readonly requestBody = new BodyCollector();
  readonly responseBody = new BodyCollector();

  #header(lines: string[], name: string): string | undefined {
    const prefix = `${name.toLowerCase()}:`;
    const line = lines.find((l) => l.toLowerCase().startsWith(prefix));
    return line?.slice(prefix.length).trim();
  }

  /** The exchange as the client saw it, when the response body has ended. */
  exchange(): HttpExchange {
    const done = performance.now();
    const sent = this.sentHeadersAt || this.createdAt;
    const bodySent = Math.max(this.bodySentAt || sent, sent);
    const headers = this.headersAt || done;
    const connect = Math.max(0, this.connectMs) + Math.max(0, this.tlsMs);
    const requestBody = this.requestBody.traced(this.#header(this.requestHeaders, 'content-type'));
    const responseBody = this.method === 'HEAD' ? undefined : this.responseBody.traced(this.#header(this.responseHeaders, 'content-type'));
    return {
      side: 'client',
      startedDateTime: new Date(this.startedDate).toISOString(),
      method: this.method,
      url: this.url,
      httpVersion: this.h2 ? 'HTTP/2' : 'HTTP/1.1',
      status: this.status,
      statusText: this.statusText,
      // HTTP/1.1: the first line is the request line, not a header.
      requestHeaders: this.h2 ? this.requestHeaders : this.requestHeaders.slice(1),
      responseHeaders: this.responseHeaders,
      ...(requestBody ? { requestBody } : {}),
      ...(responseBody ? { responseBody } : {}),
      timings: {
        // Queued in the pool (and connecting) until the head went out, minus the connection's own phases.
        blocked: round(Math.max(0, sent - this.createdAt - connect)),
        dns: -1,
        // HAR counts ssl inside connect.
        connect: this.connectMs < 0 ? -1 : round(this.connectMs + Math.max(0, this.tlsMs)),
        ssl: this.tlsMs < 0 ? -1 : round(this.tlsMs),
        send: round(bodySent - sent),
        wait: round(Math.max(0, headers - bodySent)),
        receive: round(Math.max(0, done - headers)),
      },
      ...(this.connection ? { connection: this.connection } : {}),
      ...(this.serverIPAddress ? { serverIPAddress: this.serverIPAddress } : {}),
    };
  }
}

let bodyChannels = false;

/**
 * Subscribes undici's body and end-of-response channels once, for clients whose tracer is on (undici publishes on
 * them only while someone listens, so a process that never traces HTTP pays nothing for them).
 */
export function subscribeExchangeChannels(recordOf: (request: object) => ExchangeRecord | undefined, onDone: (request: object, rec: ExchangeRecord) => void): void {
  if (bodyChannels) return;
  bodyChannels = true;
  diagnostics.subscribe('undici:request:bodyChunkSent', (m) => {
    const { request, chunk } = m as { request: object; chunk: Uint8Array | string };
    recordOf(request)?.requestBody.add(chunk);
  });
  diagnostics.subscribe('undici:request:bodySent', (m) => {
    const rec = recordOf((m as { request: object }).request);
    if (rec) rec.bodySentAt = performance.now();
  });
  diagnostics.subscribe('undici:request:bodyChunkReceived', (m) => {
    const { request, chunk } = m as { request: object; chunk: Uint8Array };
    recordOf(request)?.responseBody.add(chunk);
  });
  diagnostics.subscribe('undici:request:trailers', (m) => {
    const { request } = m as { request: object };
    const rec = recordOf(request);
    if (rec) onDone(request, rec);
  });
}
