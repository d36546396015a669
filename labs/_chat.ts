/**
 * Chat peers for the chat-transports lab: the chat app's own Node client (apps/chat/client.ts) on each of its three
 * transports (WebSocket, SSE + POST, long polling: apps/chat/link.ts), which recovers a lost connection the same way on
 * each (a new one, `hello`, `join` with `since` = the last offset seen, unsent messages again with the same cid).
 * Files starting with _ are not labs.
 */
import { connectChat, type ChatTransport } from '../apps/chat/client.ts';
import type { ChatEvent } from '../apps/chat/protocol.ts';
import type { TcpImpairmentProxy } from '../core/impair/index.ts';

export type Transport = ChatTransport;

export interface ChatPeer {
  readonly name: string;
  /** Stored events of the room, in order, each once. */
  readonly events: readonly ChatEvent[];
  /** Stored events that arrived a second time (dropped). */
  readonly duplicates: number;
  readonly reconnects: number;
  /** HTTP requests made (1 for WebSocket: its upgrade, and one per reconnect). */
  readonly requests: number;
  onEvent(fn: (e: ChatEvent) => void): void;
  /** Resolves when the server has stored it. */
  send(text: string): Promise<number>;
  close(): Promise<void>;
}

export async function openPeer(transport: Transport, port: number, name: string, room: string): Promise<ChatPeer> {
  const c = await connectChat({ url: `ws://127.0.0.1:${port}/ws`, name, transport, reconnectMinMs: 50 });
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
    get requests() {
      return c.requests;
    },
    onEvent: (fn) => void listeners.push(fn),
    send: (text) => c.send(room, text),
    close: async () => c.close(),
  };
}

export const until = async (cond: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

/** The blip: every connection through the proxy is reset (RST both ways), once. Resolves when it happened. */
export async function blip(proxy: TcpImpairmentProxy): Promise<void> {
  proxy.addToxic({ name: 'blip', type: 'reset_peer', stream: 'downstream', attributes: { timeout: 0 } });
  await until(() => (proxy.stats.toxics.blip ?? 0) > 0, 'the reset');
  proxy.removeToxic('blip');
}
