import net from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Tracer } from '../../core/trace/index.ts';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

/**
 * "host:port" of a CONNECT target. `key` names the server (localhost, 127.0.0.1 and ::1 are one host, as wirelab's
 * servers listen on loopback); `host` is where to connect.
 */
export function normalizeTarget(target: string): { host: string; port: number; key: string } | null {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(target);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const loopback = LOOPBACK_NAMES.has(host);
  return { host: host === 'localhost' ? '127.0.0.1' : host, port, key: `${loopback ? '127.0.0.1' : host}:${port}` };
}

function answer(socket: Duplex, status: number, reason: string, body: string, extra = ''): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`);
}

/**
 * CONNECT host:port: a tunnel to one of wirelab's own servers (the allow list), nothing else: any other target gets 403
 * without a connection being tried, so this playground is never an open proxy.
 */
export function handleConnect(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  allowed: Set<string>,
  tracer: Tracer,
  cid: string,
): void {
  const target = normalizeTarget(req.url ?? '');
  tracer.emit('http', cid, '>', 'request', () => `CONNECT ${req.url} HTTP/${req.httpVersion}`);
  client.on('error', () => client.destroy());
  if (!target) {
    tracer.emit('http', cid, '<', 'response', () => `400 Bad Request ← CONNECT ${req.url}: the target must be host:port`);
    answer(client, 400, 'Bad Request', 'CONNECT needs host:port\n');
    return;
  }
  if (!allowed.has(target.key)) {
    tracer.emit('http', cid, '<', 'response', () => `403 Forbidden ← CONNECT ${req.url}: not one of wirelab's servers`);
    answer(client, 403, 'Forbidden', `CONNECT is allowed to wirelab's own servers only (${[...allowed].join(', ') || 'none configured'})\n`);
    return;
  }
  const upstream = net.connect({ host: target.host, port: target.port });
  let up = 0;
  let down = 0;
  upstream.once('connect', () => {
    tracer.emit('http', cid, '<', 'response', () => `200 Connection Established ← CONNECT ${target.key}: tunnel open`);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) {
      up += head.length;
      upstream.write(head);
    }
    client.on('data', (d: Buffer) => (up += d.length));
    upstream.on('data', (d: Buffer) => (down += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  upstream.on('error', (err) => {
    if (up + down === 0 && !client.destroyed && client.writable) {
      tracer.emit('http', cid, '<', 'response', () => `502 Bad Gateway ← CONNECT ${target.key}: ${err.message}`);
      answer(client, 502, 'Bad Gateway', `could not reach ${target.key}: ${err.message}\n`);
    } else client.destroy();
  });
  upstream.once('close', () => client.destroy());
  client.once('close', () => {
    upstream.destroy();
    tracer.emit('http', cid, '*', 'tunnel', () => ({ summary: `tunnel to ${target.key} closed: ${up} B up, ${down} B down`, meta: { up, down } }));
  });
}
