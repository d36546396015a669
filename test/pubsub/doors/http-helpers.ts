import { spawn, type ChildProcess } from 'node:child_process';
import { createBroker, type BrokerOptions } from '../../../pubsub/broker/index.ts';
import type { Broker } from '../../../pubsub/broker/types.ts';
import { startPubsubHttpServer, type PubsubHttpOptions, type RunningPubsubHttpServer } from '../../../pubsub/doors/http/index.ts';
import { run } from '../../helpers/run.ts';

export interface DoorUnderTest {
  broker: Broker;
  door: RunningPubsubHttpServer;
  url: string;
  close(): Promise<void>;
}

/** A broker (in-memory embedded engine) and its HTTP door on 127.0.0.1, port 0. */
export async function startDoor(brokerOptions: BrokerOptions = {}, doorOptions: Omit<PubsubHttpOptions, 'broker'> = {}): Promise<DoorUnderTest> {
  const broker = await createBroker({ dataDir: null, ...brokerOptions });
  const door = await startPubsubHttpServer({ ...doorOptions, broker });
  return {
    broker,
    door,
    url: door.url,
    close: async () => {
      await door.close();
      await broker.close();
    },
  };
}

export interface CurlAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: unknown;
}

/** curl -s -i with `args`, the status line and headers parsed (the last response when curl saw several). */
export async function curl(args: string[], input?: string): Promise<CurlAnswer> {
  const r = await run('curl', ['-sS', '-i', '--max-time', '20', ...args], input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`curl exited ${r.code}: ${r.stderr}`);
  let rest = r.stdout;
  let head = '';
  // Skip interim answers (100 Continue).
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    head = rest.slice(0, end);
    rest = rest.slice(end + 4);
    if (!/^HTTP\/\S+ 1\d\d/.test(head)) break;
  }
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(':');
    if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  let json: unknown;
  try {
    json = JSON.parse(rest);
  } catch {
    json = undefined;
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: rest, json };
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Parses an SSE byte stream as EventSource does (comments skipped, data lines joined with \n). */
export function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    const e: SseEvent = { event: 'message', data: '' };
    const data: string[] = [];
    let any = false;
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c === -1 ? line : line.slice(0, c);
      const value = c === -1 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'id') e.id = value;
      else if (field === 'event') e.event = value;
      else if (field === 'data') {
        data.push(value);
        any = true;
      }
    }
    if (!any) continue;
    e.data = data.join('\n');
    out.push(e);
  }
  return out;
}

/** `curl -N` reading an SSE stream; `events` fills as they come; `stop()` kills curl by its PID. */
export class CurlSse {
  readonly child: ChildProcess;
  #text = '';
  #waiters: Array<() => void> = [];
  readonly exited: Promise<void>;

  constructor(url: string, extra: string[] = []) {
    this.child = spawn('curl', ['-sS', '-N', '--max-time', '60', ...extra, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.#text += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.child.stderr!.resume();
    this.exited = new Promise((resolve) => this.child.once('close', () => resolve()));
    this.child.on('error', () => {});
  }

  /** Complete events so far (a block ended by a blank line). */
  get events(): SseEvent[] {
    const end = this.#text.lastIndexOf('\n\n');
    return end === -1 ? [] : parseSse(this.#text.slice(0, end + 2));
  }

  /** Resolves once the stream has said anything (the `: subscribed` comment): the subscription is in place. */
  async opened(timeoutMs = 10_000): Promise<void> {
    await this.#until(() => this.#text.includes(': subscribed'), timeoutMs);
  }

  async waitFor(n: number, timeoutMs = 15_000): Promise<SseEvent[]> {
    await this.#until(() => this.events.length >= n, timeoutMs);
    return this.events;
  }

  async #until(ok: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`SSE: timed out; got ${JSON.stringify(this.#text.slice(-400))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.pid !== undefined) this.child.kill('SIGTERM');
    await this.exited;
  }
}
