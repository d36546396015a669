/**
 * Chat peers for the chat-transports lab: one interface over the chat app's three transports. WebSocket is the app's
 * own Node client (apps/chat/client.ts); SSE + POST and long polling are small HTTP clients here that follow the same
 * recovery rule (on a lost connection: a new one, `hello`, `join` with `since` = the last offset seen, unsent messages
 * again with the same cid). Files starting with _ are not labs.
 */
import http from 'node:http';
import { connectChat } from '../apps/chat/client.ts';
import type { ChatEvent, ClientMessage, ServerMessage } from '../apps/chat/protocol.ts';

export type Transport = 'ws' | 'sse' | 'poll';

export interface ChatPeer {
  readonly name: string;
  /** Stored events of the room, in order, each once. */
  readonly events: readonly ChatEvent[];
  /** Stored events that arrived a second time (dropped). */
  readonly duplicates: number;
  readonly reconnects: number;
  /** HTTP requests made (0 for WebSocket after its upgrade). */
  readonly requests: number;
  onEvent(fn: (e: ChatEvent) => void): void;
  /** Resolves when the server has stored it. */
  send(text: string): Promise<number>;
  close(): Promise<void>;
}

export async function openPeer(transport: Transport, port: number, name: string, room: string): Promise<ChatPeer> {
  if (transport === 'ws') return openWsPeer(port, name, room);
  const p = new HttpPeer(transport, port, name, room);
  await p.start();
  return p;
}

async function openWsPeer(port: number, name: string, room: string): Promise<ChatPeer> {
  const c = await connectChat({ url: `ws://127.0.0.1:${port}/ws`, name, reconnectMinMs: 50 });
  const listeners: Array<(e: ChatEvent) => void> = [];
  c.on((m) => {
    if (m.type === 'event' && m.room === room) for (const l of listeners) l(m);
  });
  await c.join(room);
  return {
    name,
    get events() {
      return c.rooms.get(room)?.events ?? [];
    },
    get duplicates() {
      return c.duplicates;
    },
    get reconnects() {
      return c.reconnects;
    },
    requests: 1,
    onEvent: (fn) => void listeners.push(fn),
    send: (text) => c.send(room, text),
    close: async () => c.close(),
  };
}

class HttpPeer implements ChatPeer {
  readonly events: ChatEvent[] = [];
  duplicates = 0;
  reconnects = 0;
  requests = 0;
  #last = -1;
  #token = '';
  #gen = 0;
  #closed = false;
  #out: ClientMessage[] = [];
  #posting = false;
  #listeners: Array<(e: ChatEvent) => void> = [];
  #pending = new Map<string, { text: string; resolve(n: number): void }>();
  #seq = 0;
  #agent = new http.Agent({ keepAlive: true });
  #sse: http.ClientRequest | undefined;
  #joined!: () => void;
  #reconnecting = false;

  constructor(readonly transport: 'sse' | 'poll', readonly port: number, readonly name: string, readonly room: string) {}

  async start(): Promise<void> {
    const joined = new Promise<void>((resolve) => (this.#joined = resolve));
    await this.#open();
    await joined;
  }

  onEvent(fn: (e: ChatEvent) => void): void {
    this.#listeners.push(fn);
  }

  send(text: string): Promise<number> {
    const cid = `${this.name}-${++this.#seq}`;
    return new Promise((resolve) => {
      this.#pending.set(cid, { text, resolve });
      this.#post({ type: 'send', room: this.room, text, cid });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sse?.destroy();
    this.#agent.destroy();
  }

  #request(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
    this.requests++;
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path, agent: this.#agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** A new fallback connection: its token, then hello (the welcome rejoins and resends). */
  async #open(): Promise<void> {
    const gen = ++this.#gen;
    this.#out = [];
    if (this.transport === 'sse') {
      this.#token = await new Promise<string>((resolve, reject) => {
        this.requests++;
        const req = http.get({ host: '127.0.0.1', port: this.port, path: '/sse', agent: false }, (res) => {
          let buf = '';
          let got = false;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let i: number;
            while ((i = buf.indexOf('\n\n')) !== -1) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
              if (!data) continue;
              if (block.startsWith('event: conn')) {
                got = true;
                resolve((JSON.parse(data) as { conn: string }).conn);
              } else if (gen === this.#gen) this.#handle(JSON.parse(data) as ServerMessage);
            }
          });
          res.on('error', () => this.#lost(gen));
          res.on('close', () => (got ? this.#lost(gen) : reject(new Error('SSE closed before its conn event'))));
        });
        req.on('error', (err) => (this.#token === '' ? reject(err) : this.#lost(gen)));
        this.#sse = req;
      });
    } else {
      const r = await this.#request('POST', '/poll');
      this.#token = (JSON.parse(r.body) as { conn: string }).conn;
      void this.#pollLoop(gen);
    }
    this.#post({ type: 'hello', name: this.name });
  }

  async #pollLoop(gen: number): Promise<void> {
    while (!this.#closed && gen === this.#gen) {
      try {
        const r = await this.#request('GET', `/poll?conn=${this.#token}`);
        if (gen !== this.#gen) return;
        if (r.status !== 200) return this.#lost(gen);
        for (const m of JSON.parse(r.body) as ServerMessage[]) this.#handle(m);
      } catch {
        return this.#lost(gen);
      }
    }
  }

  /** The connection is gone (reset, error): after a short pause, a new one. */
  #lost(gen: number): void {
    if (this.#closed || gen !== this.#gen || this.#reconnecting) return;
    this.#reconnecting = true;
    this.#gen++;
    this.#sse?.destroy();
    setTimeout(() => {
      this.reconnects++;
      this.#reconnecting = false;
      this.#open().catch(() => this.#lost(this.#gen));
    }, 50);
  }

  /** Frames go one POST at a time, in order (two POSTs on two sockets could overtake each other). */
  #post(m: ClientMessage): void {
    this.#out.push(m);
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#posting) return;
    this.#posting = true;
    const gen = this.#gen;
    while (this.#out.length > 0 && gen === this.#gen && !this.#closed) {
      const m = this.#out[0]!;
      try {
        const r = await this.#request('POST', `/send?conn=${this.#token}`, JSON.stringify(m));
        if (r.status !== 204) throw new Error(`POST /send: ${r.status}`);
        if (gen === this.#gen) this.#out.shift();
      } catch {
        this.#posting = false;
        return this.#lost(gen);
      }
    }
    this.#posting = false;
    if (this.#out.length > 0 && !this.#closed) void this.#pump();
  }

  #handle(m: ServerMessage): void {
    if (m.type === 'welcome') {
      this.#post({ type: 'join', room: this.room, ...(this.#last >= 0 ? { since: this.#last } : {}) });
      for (const [cid, p] of this.#pending) this.#post({ type: 'send', room: this.room, text: p.text, cid });
    } else if (m.type === 'synced' && m.room === this.room) {
      this.#joined();
    } else if (m.type === 'event' && m.room === this.room) {
      if (m.offset <= this.#last) {
        this.duplicates++;
        return;
      }
      this.#last = m.offset;
      this.events.push(m);
      for (const l of this.#listeners) l(m);
    } else if (m.type === 'sent') {
      this.#pending.get(m.cid)?.resolve(m.offset);
      this.#pending.delete(m.cid);
    }
  }
}
