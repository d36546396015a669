/**
 * The `chat` row of `wirelab up` (bin/commands/up.ts lists it after the pub/sub rows): the chat server on the process's
 * shared broker (pubsub/services.ts), so its rooms are topics any door can read (`wirelab sub 'chat.room.>'`).
 * Port: port base + 3000 (the usual port of a chat example).
 */
import type { ServiceEntry } from '../../core/registry.ts';
import { acquireSharedBroker, releaseSharedBroker } from '../../pubsub/services.ts';
import { startChatServer, type RunningChatServer } from './server/index.ts';

export const CHAT_PORT = 3000;

export const CHAT_SERVICE: ServiceEntry = {
  name: 'chat',
  proto: 'chat',
  wellKnownPort: CHAT_PORT,
  describe: 'the chat app: the web page at /, the chat protocol over WebSocket at /ws, rooms on the broker',
  async start(o) {
    const broker = await acquireSharedBroker(o.tracer);
    let server: RunningChatServer;
    try {
      server = await startChatServer({ ...o, broker });
    } catch (err) {
      await releaseSharedBroker();
      throw err;
    }
    const close = server.close.bind(server);
    let closed = false;
    server.close = async () => {
      await close();
      if (!closed) {
        closed = true;
        await releaseSharedBroker();
      }
    };
    return server;
  },
  url: (s) => s.url!,
  tryWith: (s) => `npx wirelab chat --room lobby --name ana --url ws://${s.host}:${s.port}/ws`,
  extra: (s) => ({ page: `open ${s.url} in a browser (two tabs: two users)` }),
};
