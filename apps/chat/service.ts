/**
 * The `chat` and `chat-tls` rows of `wirelab up` (bin/commands/up.ts lists them after the pub/sub rows): the chat
 * server on the process's shared broker (pubsub/services.ts), so its rooms are topics any door can read
 * (`wirelab sub 'chat.room.>'`). Port: port base + 3000 (the usual port of a chat example); `chat-tls` is the same chat
 * over https:// and wss:// on port base + 3443 (as https and wss are the http and ws rows over TLS): one more door on
 * the chat row's server when it runs (same rooms, same presence), a chat server of its own with `--only chat-tls`.
 * With `--engine jetstream` it is one node of a multi-node chat: its presence, typing and receipts go over the
 * engine's NATS cluster to every chat server there (server/cluster.ts).
 */
import { join } from 'node:path';
import { dataDir } from '../../core/paths.ts';
import type { ServiceEntry } from '../../core/registry.ts';
import type { RunningServer } from '../../core/server.ts';
import type { TlsSettings } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { upEngineChoice } from '../../pubsub/engines/jetstream/up.ts';
import { onSharedBroker } from '../../pubsub/services.ts';
import { startChatServer, type ChatServerOptions, type RunningChatServer } from './server/index.ts';

export const CHAT_PORT = 3000;
export const CHAT_TLS_PORT = 3443;

/** The chat server the chat row started in this process (the chat-tls row opens its door on it). */
let running: RunningChatServer | undefined;

type Start = { host: string; port: number; tracer: Tracer } & ChatServerOptions;

const startOnBroker = (o: Start): Promise<RunningChatServer> =>
  onSharedBroker(async (broker) => {
    const engine = upEngineChoice();
    const server = await startChatServer({ ...o, broker, ...(engine.kind === 'jetstream' ? { cluster: { servers: engine.servers } } : {}) });
    running = server;
    const close = server.close.bind(server);
    server.close = () => {
      if (running === server) running = undefined;
      return close();
    };
    return server;
  }, o.tracer);

const caPath = (): string => join(dataDir(), 'tls', 'ca.pem');

export const CHAT_SERVICE: ServiceEntry = {
  name: 'chat',
  proto: 'chat',
  wellKnownPort: CHAT_PORT,
  describe: 'the chat app: the web page at /, the chat protocol over WebSocket at /ws, rooms on the broker',
  start: (o) => startOnBroker(o),
  url: (s) => s.url!,
  tryWith: (s) => `npx wirelab chat --room lobby --name ana --url ws://${s.host}:${s.port}/ws`,
  extra: (s) => ({
    page: `open ${s.url} in a browser (two tabs: two users)`,
    ...((s as RunningChatServer).cluster ? { node: `multi-node: node ${(s as RunningChatServer).cluster!.node} (presence over NATS)` } : {}),
  }),
};

export const CHAT_TLS_SERVICE: ServiceEntry = {
  name: 'chat-tls',
  proto: 'chat',
  wellKnownPort: CHAT_TLS_PORT,
  describe: 'the same chat over TLS: the page at https://, WebSocket at wss:///ws, SSE and polling over https (passwords need no allowInsecureAuth)',
  start: (o): Promise<RunningServer> => {
    const tls: TlsSettings | true = (o as { tls?: TlsSettings }).tls ?? true;
    if (running) return running.addDoor({ host: o.host, port: o.port, tls });
    return startOnBroker({ ...o, tls });
  },
  url: (s) => s.url!,
  tryWith: (s) => `npx wirelab chat --room lobby --name ana --url https://localhost:${s.port}/ --ca ${caPath()}`,
  extra: (s) => ({ page: `open https://localhost:${s.port}/ in a browser that trusts ${caPath()}` }),
};
