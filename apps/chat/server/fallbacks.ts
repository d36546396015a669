/**
 * The fallback transports, for clients that cannot keep a WebSocket (Socket.IO's, with the same protocol messages):
 * - SSE + POST: `GET /sse` is an event stream; its first event (`event: conn`) carries a connection token; every
 *   server message follows as one `data:` line of JSON. The client posts its messages to `POST /send?conn=TOKEN`.
 * - long polling: `POST /poll` answers `{ conn }`; `GET /poll?conn=TOKEN` waits up to pollWaitMs for messages and
 *   answers a JSON array (empty on timeout); the client posts to `POST /send?conn=TOKEN` as well. A connection not
 *   polled for pollIdleMs is closed.
 * A token is 128 random bits: whoever holds it is that connection (it never leaves the two ends and the loopback).
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Tracer } from '../../../core/trace/index.ts';
import { nextCid } from '../../../core/trace/index.ts';
import type { ServerMessage } from '../protocol.ts';
import type { ChatCore } from './core.ts';
import { wire } from './state.ts';
import type { ResolvedChatOptions } from './options.ts';

interface Fallback {
  handle: { frame(text: string): void; closed(): void };
  end(): void;
}

export interface Fallbacks {
  /** Serves /sse, /poll and /send; false when the path is none of them. */
  serve(req: http.IncomingMessage, res: http.ServerResponse, path: string, headers: Record<string, string>): boolean;
  /** Open fallback connections now. */
  readonly open: number;
  close(): void;
}

const isTls = (req: http.IncomingMessage): boolean => 'encrypted' in req.socket && req.socket.encrypted === true;

export function createFallbacks(core: ChatCore, o: ResolvedChatOptions, tracer: Tracer, countOpen: () => number): Fallbacks {
  const conns = new Map<string, Fallback>();

  const answer = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string>): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const full = (): boolean => countOpen() >= o.maxConnections;

  const openSse = (req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string>): void => {
    const token = randomBytes(16).toString('hex');
    const cid = nextCid('chat-sse');
    res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'keep-alive', 'x-accel-buffering': 'no', ...headers });
    res.write(`event: conn\ndata: ${JSON.stringify({ conn: token })}\n\n`);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      conns.delete(token);
      handle.closed();
      res.end();
    };
    const handle = core.open({
      cid,
      transport: 'sse',
      secure: isTls(req),
      peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      send(m: ServerMessage) {
        if (ended) return;
        if (res.writableLength > o.maxBufferedBytes) return end();
        res.write(`data: ${wire(m)}\n\n`);
      },
      close: () => end(),
    });
    conns.set(token, { handle, end });
    // A comment line keeps proxies and the browser from timing the stream out.
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    req.on('close', () => {
      clearInterval(keepAlive);
      end();
    });
    res.on('error', () => end());
  };

  const openPoll = (req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string>): void => {
    const token = randomBytes(16).toString('hex');
    const cid = nextCid('chat-poll');
    const queue: ServerMessage[] = [];
    let queuedBytes = 0;
    let waiting: http.ServerResponse | undefined;
    let waitTimer: NodeJS.Timeout | undefined;
    let ended = false;
    let idle: NodeJS.Timeout;
    const flush = (): void => {
      if (!waiting) return;
      const r = waiting;
      waiting = undefined;
      clearTimeout(waitTimer);
      const batch = `[${queue.splice(0).map(wire).join(',')}]`;
      queuedBytes = 0;
      r.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(batch), ...headers });
      r.end(batch);
    };
    const end = (): void => {
      if (ended) return;
      ended = true;
      conns.delete(token);
      polls.delete(token);
      clearTimeout(idle);
      flush();
      handle.closed();
    };
    const touch = (): void => {
      clearTimeout(idle);
      idle = setTimeout(end, o.pollIdleMs);
      idle.unref();
    };
    const handle = core.open({
      cid,
      transport: 'poll',
      secure: isTls(req),
      peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      send(m: ServerMessage) {
        if (ended) return;
        queuedBytes += wire(m).length;
        if (queuedBytes > o.maxBufferedBytes) return end();
        queue.push(m);
        // Answer on the next turn, so messages sent together leave in one response.
        if (waiting) setImmediate(flush);
      },
      close: () => end(),
    });
    conns.set(token, { handle, end });
    polls.set(token, (r: http.ServerResponse) => {
      touch();
      if (waiting) answer(waiting, 200, [], headers);
      waiting = r;
      r.on('close', () => {
        if (waiting === r) waiting = undefined;
      });
      if (queue.length > 0) return flush();
      waitTimer = setTimeout(flush, o.pollWaitMs);
    });
    touch();
    answer(res, 200, { conn: token }, headers);
  };
  const polls = new Map<string, (res: http.ServerResponse) => void>();

  const post = (req: http.IncomingMessage, res: http.ServerResponse, token: string, headers: Record<string, string>): void => {
    const conn = conns.get(token);
    if (!conn) return answer(res, 404, { error: 'no such connection: open one with GET /sse or POST /poll' }, headers);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (over) return;
      if (size > o.maxFrameBytes) {
        over = true;
        // The answer goes out first; then the socket is cut so the rest of the body is never read.
        res.on('finish', () => req.socket.destroy());
        tracer.emit('chat', 'chat-http', '*', 'limit', () => `POST /send over maxFrameBytes=${o.maxFrameBytes}: 413`);
        answer(res, 413, { error: `a message over maxFrameBytes=${o.maxFrameBytes}` }, { ...headers, connection: 'close' });
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (over) return;
      conn.handle.frame(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(204, headers);
      res.end();
    });
  };

  return {
    serve(req, res, path, headers) {
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('conn') ?? '';
      if (path === '/sse' && req.method === 'GET') {
        if (full()) answer(res, 503, { error: `maxConnections=${o.maxConnections} reached` }, headers);
        else openSse(req, res, headers);
        return true;
      }
      if (path === '/poll' && req.method === 'POST') {
        if (full()) answer(res, 503, { error: `maxConnections=${o.maxConnections} reached` }, headers);
        else openPoll(req, res, headers);
        return true;
      }
      if (path === '/poll' && req.method === 'GET') {
        const poll = polls.get(token);
        if (!poll || !conns.has(token)) {
          polls.delete(token);
          answer(res, 404, { error: 'no such connection' }, headers);
        } else poll(res);
        return true;
      }
      if (path === '/send' && req.method === 'POST') {
        post(req, res, token, headers);
        return true;
      }
      return false;
    },
    get open() {
      return conns.size;
    },
    close() {
      for (const c of [...conns.values()]) c.end();
      polls.clear();
    },
  };
}
