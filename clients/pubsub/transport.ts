/**
 * The client's side of a native pub/sub connection: a WebSocket (JSON text frames) or a TCP / TLS socket
 * (length-prefixed binary frames), behind one small interface so the client above does not care which.
 */
import net from 'node:net';
import { TickWriter } from '../../core/tick-writer.ts';
import tls from 'node:tls';
import WebSocket, { type RawData } from 'ws';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { tlsClientOptions, type TlsSettings } from '../../core/tls/index.ts';
import { COMPACT_VERSION, createFrameDecoder, encodeBinary, encodeCompactPub, encodeJson, parseServerBinary, parseServerJson, type ClientMessage, type Parsed, type ServerMessage } from '../../protocols/pubsub.ts';

export interface Transport {
  /** False when the transport is congested (the caller may wait for `onDrain`). */
  send(m: ClientMessage): boolean;
  close(): void;
  /** The version the welcome named: from 2 on, a TCP transport sends `pub` as a compact frame. */
  negotiated(version: number): void;
}

export interface TransportHandlers {
  message(parsed: Parsed<ServerMessage>): void;
  /** Once, when the transport is gone (after `close()` too); `why` says how. */
  closed(why: string): void;
  drain(): void;
}

export type Scheme = 'ws' | 'wss' | 'tcp' | 'tls';

export function schemeOf(url: URL): Scheme {
  const s = url.protocol.replace(/:$/, '');
  if (s === 'ws' || s === 'wss' || s === 'tcp' || s === 'tls') return s;
  throw new WirelabError(ErrorCodes.INVALID_OPTION, `url: the scheme must be ws, wss, tcp or tls, got ${JSON.stringify(url.protocol)}`);
}

/** Opens the transport; resolves once it is connected (rejects with the socket's error). */
export async function openTransport(url: URL, o: { tls: TlsSettings; maxFrameBytes: number; timeoutMs: number }, h: TransportHandlers): Promise<Transport> {
  const scheme = schemeOf(url);
  let done = false;
  const closed = (why: string): void => {
    if (done) return;
    done = true;
    h.closed(why);
  };
  if (scheme === 'ws' || scheme === 'wss') {
    const extra = scheme === 'wss' ? await tlsClientOptions(o.tls) : {};
    const target = url.pathname === '/' ? new URL('/pubsub', url) : url;
    const ws = new WebSocket(target, { maxPayload: o.maxFrameBytes, handshakeTimeout: o.timeoutMs, ...extra });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.on('error', () => undefined);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const b = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      h.message(isBinary ? parseServerBinary(b) : parseServerJson(b.toString('utf8')));
    });
    ws.on('close', (code: number, reason: Buffer) => closed(`websocket closed ${code}${reason.length ? ` ${reason.toString()}` : ''}`));
    const raw = (ws as unknown as { _socket?: net.Socket })._socket;
    raw?.on('drain', () => h.drain());
    return {
      send(m) {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.send(encodeJson(m));
        return ws.bufferedAmount < 64 * 1024;
      },
      close: () => ws.terminate(),
      negotiated: () => undefined,
    };
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port);
  const socket =
    scheme === 'tls'
      ? tls.connect({ host, port, ...(await tlsClientOptions(o.tls)) })
      : net.connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new WirelabError(ErrorCodes.TIMEOUT, `no connection to ${url.host} within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    socket.once(scheme === 'tls' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  const decoder = createFrameDecoder(o.maxFrameBytes);
  socket.on('data', (chunk: Buffer) => {
    let frames: Buffer[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      h.message({ ok: false, problem: err instanceof Error ? err.message : String(err) });
      socket.destroy();
      return;
    }
    for (const f of frames) h.message(parseServerBinary(f));
  });
  socket.on('drain', () => h.drain());
  socket.on('close', () => closed('socket closed'));
  let compact = false;
  // Frames sent in one turn of the event loop (many publishes in flight) leave in one write() at the next tick.
  const writer = new TickWriter(socket);
  return {
    send: (m) => {
      if (!socket.writable) return false;
      return writer.push(compact && m.type === 'pub' ? encodeCompactPub(m) : encodeBinary(m));
    },
    close: () => {
      writer.flush();
      socket.destroy();
    },
    negotiated: (version) => {
      compact = version >= COMPACT_VERSION;
    },
  };
}
