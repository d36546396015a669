/**
 * The Node chat client's transports (apps/chat/client.ts): one interface over the chat server's WebSocket (/ws), SSE
 * + POST (GET /sse, POST /send) and long polling (POST /poll, GET /poll, POST /send), as server/fallbacks.ts serves
 * them. A link reports open (send hello now), each server message, and its end (once); it never reconnects by itself.
 * Over wss:// / https:// every transport verifies the server's certificate against `tls.ca` (the client gives the CA
 * it trusts); a certificate that does not verify ends the link with a ChatError WL_ERR_CHAT_TLS naming Node's reason.
 */
import http from 'node:http';
import https from 'node:https';
import type { SecureVersion } from 'node:tls';
import WebSocket from 'ws';
import { ChatCodes, ChatError, type ClientMessage, type ServerMessage } from './protocol.ts';

export type ChatTransport = 'ws' | 'sse' | 'poll';
export const CHAT_TRANSPORTS: readonly ChatTransport[] = ['ws', 'sse', 'poll'];

export interface LinkHandlers {
  open(): void;
  message(m: ServerMessage): void;
  /** The link ended (error, reset, server close, or close()): called once. */
  closed(err?: Error): void;
}

/** What a TLS link trusts and offers: the CA(s) that must have signed the server's certificate (never switched off). */
export interface LinkTls {
  ca: string | Buffer | (string | Buffer)[];
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
}

/** Node's certificate and handshake errors (tls / OpenSSL codes): a link ended by one is a WL_ERR_CHAT_TLS. */
const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_|ERR_SSL_|^EPROTO$|HOSTNAME_MISMATCH/;

/** A link's end as the caller sees it: a TLS failure becomes a ChatError with a stable code and Node's reason. */
export function linkError(err: (Error & { code?: string }) | undefined, url: string): Error | undefined {
  if (!err || !TLS_ERROR.test(err.code ?? '')) return err;
  const host = new URL(url).host;
  const why = /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME/.test(err.code ?? '')
    ? `the certificate of ${host} is not trusted (${err.code}: ${err.message}); give the CA that signed it (ca / --ca FILE)`
    : `the TLS handshake with ${host} failed (${err.code}: ${err.message})`;
  return new ChatError(ChatCodes.TLS, why, { cause: err });
}

export interface ChatLink {
  readonly transport: ChatTransport;
  /** The WebSocket, for the ws transport (tests reset it). */
  readonly ws: WebSocket | undefined;
  /** HTTP requests made so far (the upgrade for ws). */
  readonly requests: number;
  /** Sends when open; dropped before (the client rejoins and resends on welcome). */
  send(m: ClientMessage): void;
  /** Resolves when what was sent has left (HTTP: every POST answered), or after maxMs. */
  drained(maxMs: number): Promise<void>;
  close(): void;
}

const parse = (text: string): ServerMessage | undefined => {
  try {
    return JSON.parse(text) as ServerMessage;
  } catch {
    return undefined;
  }
};

/**
 * `url` is the chat server's ws://host:port/ws or wss://host:port/ws; the HTTP transports use the same host and port
 * (http:// or https://). `tls` is required for wss://.
 */
export function openLink(transport: ChatTransport, url: string, h: LinkHandlers, tls?: LinkTls): ChatLink {
  if (/^wss:/i.test(url) && !tls) throw new ChatError(ChatCodes.TLS, 'a wss:// link needs the CA it trusts (tls.ca)');
  return transport === 'ws' ? wsLink(url, h, tls) : new HttpLink(transport, url, h, tls);
}

function wsLink(url: string, h: LinkHandlers, tls: LinkTls | undefined): ChatLink {
  const ws = new WebSocket(url, /^wss:/i.test(url) && tls ? { ...tls } : {});
  let ended = false;
  const end = (err?: Error): void => {
    if (ended) return;
    ended = true;
    h.closed(linkError(err, url));
  };
  ws.on('error', (err) => end(err));
  ws.on('open', () => h.open());
  ws.on('message', (data) => {
    const m = parse(data.toString());
    if (m && !ended) h.message(m);
  });
  ws.on('close', () => end());
  return {
    transport: 'ws',
    ws,
    requests: 1,
    send(m) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
    },
    drained: () => Promise.resolve(),
    close() {
      ws.close(1000);
      end();
    },
  };
}

class HttpLink implements ChatLink {
  readonly ws = undefined;
  requests = 0;
  readonly #base: URL;
  readonly #agent: http.Agent;
  /** https: the TLS options every request carries (the SSE request has no agent). */
  readonly #tls: LinkTls | undefined;
  readonly #mod: typeof http | typeof https;
  #token = '';
  #ended = false;
  #out: ClientMessage[] = [];
  #posting = false;
  #sse: http.ClientRequest | undefined;

  constructor(
    readonly transport: 'sse' | 'poll',
    url: string,
    readonly h: LinkHandlers,
    tls: LinkTls | undefined,
  ) {
    this.#base = new URL(url.replace(/^ws/i, 'http'));
    const secure = this.#base.protocol === 'https:';
    this.#tls = secure ? tls : undefined;
    this.#mod = secure ? https : http;
    this.#agent = secure ? new https.Agent({ keepAlive: true, ...tls }) : new http.Agent({ keepAlive: true });
    if (transport === 'sse') this.#openSse();
    else
      this.#request('POST', '/poll')
        .then((r) => {
          if (r.status !== 200) throw new Error(`POST /poll: ${r.status} ${r.body.slice(0, 100)}`);
          this.#token = (JSON.parse(r.body) as { conn: string }).conn;
          this.h.open();
          void this.#pollLoop();
        })
        .catch((err: Error) => this.#end(err));
  }

  send(m: ClientMessage): void {
    // Before the connection has its token it is not open: dropped, as a WebSocket not yet open drops it (the client
    // resends unstored messages and rejoins its rooms on welcome).
    if (this.#ended || this.#token === '') return;
    this.#out.push(m);
    void this.#pump();
  }

  close(): void {
    this.#end();
  }

  async drained(maxMs: number): Promise<void> {
    const end = performance.now() + maxMs;
    while ((this.#out.length > 0 || this.#posting) && !this.#ended && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
  }

  #end(err?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sse?.destroy();
    this.#agent.destroy();
    this.h.closed(linkError(err, this.#base.href));
  }

  #request(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
    this.requests++;
    return new Promise((resolve, reject) => {
      const req = this.#mod.request({ host: this.#base.hostname, port: this.#base.port, method, path, agent: this.#agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  #openSse(): void {
    this.requests++;
    const req = this.#mod.get({ host: this.#base.hostname, port: this.#base.port, path: '/sse', agent: false, ...this.#tls }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return this.#end(new Error(`GET /sse: ${res.statusCode}`));
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (!data || this.#ended) continue;
          if (block.startsWith('event: conn')) {
            this.#token = (JSON.parse(data) as { conn: string }).conn;
            this.h.open();
          } else {
            const m = parse(data);
            if (m) this.h.message(m);
          }
        }
      });
      res.on('error', (err) => this.#end(err));
      res.on('close', () => this.#end());
    });
    req.on('error', (err) => this.#end(err));
    this.#sse = req;
  }

  async #pollLoop(): Promise<void> {
    while (!this.#ended) {
      try {
        const r = await this.#request('GET', `/poll?conn=${this.#token}`);
        if (this.#ended) return;
        if (r.status !== 200) return this.#end(new Error(`GET /poll: ${r.status}`));
        for (const m of JSON.parse(r.body) as ServerMessage[]) if (!this.#ended) this.h.message(m);
      } catch (err) {
        return this.#end(err as Error);
      }
    }
  }

  /** Frames go one POST at a time, in order (two POSTs on two sockets could overtake each other). */
  async #pump(): Promise<void> {
    if (this.#posting || this.#token === '') return;
    this.#posting = true;
    while (this.#out.length > 0 && !this.#ended) {
      try {
        const r = await this.#request('POST', `/send?conn=${this.#token}`, JSON.stringify(this.#out[0]));
        if (r.status !== 204) throw new Error(`POST /send: ${r.status}`);
        this.#out.shift();
      } catch (err) {
        this.#posting = false;
        return this.#end(err as Error);
      }
    }
    this.#posting = false;
  }
}
