/**
 * The `chat` row of `wirelab up` (bin/commands/up.ts lists it after the pub/sub rows): the chat server on the process's
 * shared broker (pubsub/services.ts), so its rooms are topics any door can read (`wirelab sub 'chat.room.>'`).
 * Port: port base + 3000 (the usual port of a chat example). With `--engine jetstream` it is one node of a multi-node
 * chat: its presence, typing and receipts go over the engine's NATS cluster to every chat server there (server/cluster.ts).
 */
import type { ServiceEntry } from '../../core/registry.ts';
import { upEngineChoice } from '../../pubsub/engines/jetstream/up.ts';
import { onSharedBroker } from '../../pubsub/services.ts';
import { startChatServer, type RunningChatServer } from './server/index.ts';

export const CHAT_PORT = 3000;

export const CHAT_SERVICE: ServiceEntry = {
  name: 'chat',
  proto: 'chat',
  wellKnownPort: CHAT_PORT,
  describe: 'the chat app: the web page at /, the chat protocol over WebSocket at /ws, rooms on the broker',
  start: (o) =>
    onSharedBroker((broker) => {
      const engine = upEngineChoice();
      return startChatServer({ ...o, broker, ...(engine.kind === 'jetstream' ? { cluster: { servers: engine.servers } } : {}) });
    }, o.tracer),
  url: (s) => s.url!,
  tryWith: (s) => `npx wirelab chat --room lobby --name ana --url ws://${s.host}:${s.port}/ws`,
  extra: (s) => ({
    page: `open ${s.url} in a browser (two tabs: two users)`,
    ...((s as RunningChatServer).cluster ? { node: `multi-node: node ${(s as RunningChatServer).cluster!.node} (presence over NATS)` } : {}),
  }),
};
