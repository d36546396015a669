/**
 * `wirelab chat --room lobby --name ana [--url ws://HOST:PORT/ws] [--transport ws|sse|poll]`: the terminal chat client.
 * Each stdin line is a message; /join ROOM, /who, /history [N], /dm NAME TEXT, /transport ws|sse|poll, /leave, /quit,
 * /help are commands. DMs go peer to peer over a WebRTC data channel (werift: apps/chat/dm-peer.ts) with a page or
 * another terminal, and through the server's relay when ICE does not connect within dmIceTimeoutMs (or with --no-webrtc). Piped stdin: sends every line, waits until
 * each is stored, then exits 0. A lost connection reconnects and recovers the missed messages (apps/chat/client.ts).
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { DEFAULT_PORT_BASE } from '../../core/registry.ts';
import { connectChat, type ChatClient, type ChatTransport } from '../../apps/chat/client.ts';
import { CHAT_TRANSPORTS } from '../../apps/chat/link.ts';
import { DmAgent } from '../../apps/chat/dm-peer.ts';
import { CHAT_DEFAULTS } from '../../apps/chat/server/options.ts';
import { nameProblem, roomProblem, type ChatEvent, type ServerMessage } from '../../apps/chat/protocol.ts';
import { CHAT_PORT } from '../../apps/chat/service.ts';

export interface ChatFlags {
  url?: string;
  'port-base'?: string;
  room?: string;
  name?: string;
  'timeout-ms'?: string;
  transport?: string;
  'no-webrtc'?: boolean;
  'password-file'?: string;
  token?: string;
  'allow-insecure-auth'?: boolean;
  ca?: string;
}

const HELP = [
  '/join ROOM  /who  /history [N]  /leave  /quit  /help',
  '/dm NAME TEXT    a direct message to NAME (online in a room you are in): peer to peer over a WebRTC data channel',
  '                 when ICE connects, else through the server (relay); each says which, and its round trip',
  '/transport ws|sse|poll   switch the connection live (WebSocket, SSE + POST, long polling): no message lost or twice',
  'anything else is a message to the current room',
].join('\n');

const time = (t: number): string => new Date(t).toTimeString().slice(0, 8);

/** An event as one line; a live message says its transport and how long after the broker stored it it arrived. */
function line(ev: ChatEvent, live: boolean, transport = 'ws'): string | undefined {
  const at = `[${time(ev.t)}] #${ev.room}`;
  if (ev.kind === 'msg') return `${at} ${ev.user}: ${ev.text ?? ''}${live ? `  (${transport}, ${Math.max(0, Date.now() - ev.t)} ms after stored)` : ''}`;
  if (ev.kind === 'edit') return `${at} ${ev.user} edited @${ev.ref}: ${ev.text ?? ''}`;
  if (ev.kind === 'delete') return `${at} ${ev.user} deleted @${ev.ref}`;
  if (ev.kind === 'created') return `${at} * created by ${ev.user}`;
  if (ev.kind === 'kick') return `${at} * ${ev.user} kicked ${ev.target}`;
  if (ev.kind === 'mute') return `${at} * ${ev.user} ${ev.until ? 'muted' : 'unmuted'} ${ev.target}`;
  return undefined;
}

/** Exit 0 at the end of stdin or /quit, 1 when the server cannot be reached or refuses the name or room, 2 usage. */
export async function chatCommand(flags: ChatFlags): Promise<number> {
  const name = flags.name ?? process.env.USER ?? 'guest';
  let room = flags.room ?? 'lobby';
  const bad = nameProblem(name, 1000) ?? roomProblem(room);
  if (bad) {
    console.error(`wirelab chat: ${bad}`);
    return 2;
  }
  if (flags.url !== undefined && flags['port-base'] !== undefined) {
    console.error('wirelab chat: give --url or --port-base, not both');
    return 2;
  }
  const base = flags['port-base'] === undefined ? DEFAULT_PORT_BASE : Number(flags['port-base']);
  const url = flags.url ?? `ws://127.0.0.1:${base + CHAT_PORT}/ws`;
  if (!/^(wss?|https?):\/\/[^/]+/.test(url)) {
    console.error(`wirelab chat: --url must be ws://HOST:PORT/ws, wss://HOST:PORT/ws or the page's http(s)://HOST:PORT/, got ${url}`);
    return 2;
  }
  // --ca: the CA the server's certificate must be signed by (PEM). Only for TLS: over ws:// it would trust nothing.
  let ca: string | undefined;
  if (flags.ca !== undefined) {
    if (!/^(wss|https):/.test(url)) {
      console.error('wirelab chat: --ca is for a wss:// or https:// --url');
      return 2;
    }
    try {
      ca = await readFile(flags.ca, 'utf8');
    } catch (err) {
      console.error(`wirelab chat: --ca ${flags.ca}: ${(err as Error).message}`);
      return 2;
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      console.error(`wirelab chat: --ca ${flags.ca}: no PEM certificate in it`);
      return 2;
    }
  }
  const timeoutMs = flags['timeout-ms'] === undefined ? 10_000 : Number(flags['timeout-ms']);
  const transport = (flags.transport ?? 'ws') as ChatTransport;
  if (!CHAT_TRANSPORTS.includes(transport)) {
    console.error(`wirelab chat: --transport is ws, sse or poll, got ${flags.transport}`);
    return 2;
  }
  // A password from a file (its first line) or the environment, never from the command line (ps shows it).
  let password: string | undefined;
  if (flags['password-file'] !== undefined) {
    try {
      password = (await readFile(flags['password-file'], 'utf8')).split(/\r?\n/)[0];
    } catch (err) {
      console.error(`wirelab chat: --password-file ${flags['password-file']}: ${(err as Error).message}`);
      return 2;
    }
  } else if (flags.token === undefined && process.env.WIRELAB_PASSWORD) password = process.env.WIRELAB_PASSWORD;
  if (password !== undefined && flags.token !== undefined) {
    console.error('wirelab chat: give --password-file or --token, not both');
    return 2;
  }
  const secret = { ...(password !== undefined ? { password } : {}), ...(flags.token !== undefined ? { token: flags.token } : {}), allowInsecureAuth: flags['allow-insecure-auth'] === true };
  let client: ChatClient;
  try {
    // With a token and no --name, the token's user is the name.
    const who = flags.name === undefined && flags.token !== undefined ? {} : { name };
    client = await connectChat({ url, ...who, ...secret, ...(ca !== undefined ? { ca } : {}), timeoutMs, transport, declineDmOffers: flags['no-webrtc'] === true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const hint = code === 'WL_ERR_CHAT_AUTH' || code === 'WL_ERR_CHAT_NAME' || code === 'WL_ERR_CHAT_TLS' ? '' : ' (is wirelab up running? npm start)';
    const shown = code === 'WL_ERR_CHAT_TLS' ? `${code}: ` : '';
    console.error(`wirelab chat: cannot chat on ${url}: ${shown}${err instanceof Error ? err.message : String(err)}${hint}`);
    return 1;
  }
  const agent = flags['no-webrtc'] ? undefined : new DmAgent(client, { iceTimeoutMs: CHAT_DEFAULTS.dmIceTimeoutMs, onDm: (from, text) => console.log(`[${time(Date.now())}] (dm) ${from}: ${text}  (webrtc (p2p))`) });
  // Rooms whose catch-up is done: later events are live (a latency is shown), earlier ones are history.
  const synced = new Set<string>();
  client.on((m: ServerMessage) => {
    if (m.type === 'event') {
      const text = line(m, synced.has(m.room), client.transport);
      if (text) console.log(text);
    } else if (m.type === 'presence') console.log(`* ${m.user} ${m.state === 'join' ? 'joined' : 'left'} #${m.room} (online: ${m.online.join(', ')})`);
    else if (m.type === 'who') console.log(`* #${m.room} online: ${m.online.join(', ')}${m.owner ? `; owner ${m.owner}` : ''}`);
    else if (m.type === 'history') for (const ev of m.events) console.log(line(ev, false) ?? '');
    else if (m.type === 'synced') synced.add(m.room);
    else if (m.type === 'left') console.log(`* left #${m.room}: ${m.reason}`);
    else if (m.type === 'dm') console.log(`[${time(m.t)}] (dm) ${m.from}: ${m.text}  (relay)`);
    else if (m.type === 'error') console.error(`! ${m.code}: ${m.message}`);
    else if (m.type === 'joined' && !m.recovered && client.reconnects > 0) console.log(`* #${m.room}: could not recover from the last message seen; showing the newest ones`);
  });
  try {
    await client.join(room);
  } catch (err) {
    console.error(`wirelab chat: cannot join #${room}: ${err instanceof Error ? err.message : String(err)}`);
    client.close();
    return 1;
  }
  console.log(`* ${client.name} in #${room} on ${url}. ${HELP}`);

  const sends: Promise<unknown>[] = [];
  const rl = createInterface({ input: process.stdin, terminal: process.stdin.isTTY === true });
  const done = new Promise<void>((resolve) => rl.on('close', resolve));
  rl.on('line', (input) => {
    const text = input.trim();
    if (text === '') return;
    const [cmd, ...rest] = text.split(/\s+/);
    if (cmd === '/quit') return rl.close();
    if (cmd === '/help') return console.log(HELP);
    if (cmd === '/who') return client.raw({ type: 'who', room });
    if (cmd === '/leave') return client.leave(room);
    if (cmd === '/history') {
      const r = client.rooms.get(room);
      const first = r?.events[0]?.offset ?? 0;
      return client.raw({ type: 'history', room, before: first, limit: Number(rest[0] ?? 20) || 20 });
    }
    if (cmd === '/join') {
      const next = rest[0] ?? '';
      const problem = roomProblem(next);
      if (problem) return console.error(`! ${problem}`);
      room = next;
      if (!client.rooms.has(next)) client.join(next).catch((err: Error) => console.error(`! ${err.message}`));
      return;
    }
    if (cmd === '/dm') {
      const to = rest[0] ?? '';
      const body = text.slice(text.indexOf(to) + to.length).trim();
      if (!to || !body) return console.error('! /dm NAME TEXT');
      const sent: Promise<{ via: string; ms: number; why?: string }> = agent ? agent.send(to, body) : client.dm(to, body).then((ms) => ({ via: 'relay', ms, why: '--no-webrtc' }));
      sends.push(
        sent.then(
          ({ via, ms, why }) => console.log(`* (dm) to ${to}: ${body}  (${via}, ${ms.toFixed(1)} ms round trip${why ? `; peer to peer: ${why}` : ''})`),
          (err: Error) => console.error(`! dm to ${to}: ${err.message}`),
        ),
      );
      return;
    }
    if (cmd === '/transport') {
      const next = rest[0] as ChatTransport;
      if (!CHAT_TRANSPORTS.includes(next)) return console.error('! /transport ws|sse|poll');
      sends.push(client.setTransport(next).then(() => console.log(`* now on ${next}`), (err: Error) => console.error(`! /transport ${next}: ${err.message}`)));
      return;
    }
    if (cmd?.startsWith('/')) return console.error(`! unknown command ${cmd}: ${HELP}`);
    sends.push(client.send(room, input).catch(() => {}));
  });
  await done;
  // Piped input: every line stored before exiting (a rate-limited one is reported above, not retried).
  await Promise.all(sends);
  await new Promise((r) => setTimeout(r, 100));
  await agent?.close();
  client.close();
  return 0;
}
