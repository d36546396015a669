import { connectSignaling, type SignalingClient } from '../../clients/signaling.ts';
import { createWebRtcPeer, WEBRTC_PEER_DEFAULTS, type PeerChannel, type WebRtcPeer } from '../../clients/webrtc.ts';
import { ErrorCodes } from '../../core/errors.ts';
import { DEFAULT_PORT_BASE } from '../../core/registry.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { ROOM_RE } from '../../protocols/signaling.ts';
import { LineSplitter } from '../cli/lines.ts';
import { sleep } from '../../core/time.ts';

export interface WebRtcFlags {
  url?: string;
  'port-base'?: string;
  room?: string;
  label?: string;
  'timeout-ms'?: string;
}

/** webrtc-signal's offset from the port base (servers/index.ts): ws on base + 81, signaling on base + 82. */
export const SIGNAL_PORT_OFFSET = 82;
/** The channels the browser page makes when it calls (servers/webrtc/page.ts); this peer makes the same. */
export const PAGE_CHANNELS = ['chat', 'unreliable'] as const;
/** Lines typed before any peer is connected wait here; past this many the oldest is dropped. */
export const MAX_WAITING_LINES = 1000;

interface Remote {
  peer: WebRtcPeer;
  /** The channel stdin lines go to, once open. */
  out?: PeerChannel;
}

/** ", peer to peer 127.0.0.1:50001 ⇄ 127.0.0.1:50002 (udp)" from the pair ICE chose (candidate lines: foundation
 * component transport priority address port typ type ...). */
function describePair(peer: WebRtcPeer): string {
  const pair = peer.selectedPair();
  if (!pair) return '';
  const at = (c: string): string => {
    const f = c.replace(/^candidate:/, '').split(' ');
    return `${f[4]}:${f[5]} ${f[7] ?? ''}`.trim();
  };
  return `, peer to peer over ${pair.local.split(' ')[2]?.toLowerCase() ?? 'udp'}: ${at(pair.local)} ⇄ ${at(pair.remote)}`;
}

/**
 * `wirelab webrtc`: one werift peer in a room. Calls the peers already there, answers those who join later (the browser
 * page's rule: the newcomer calls), sends each stdin line on `--label`, prints what arrives on any channel.
 */
export async function webrtcCommand(flags: WebRtcFlags, tracer: Tracer): Promise<number> {
  const fail = (msg: string): number => {
    console.error(`wirelab webrtc: ${msg}`);
    return 2;
  };
  if (flags.url !== undefined && flags['port-base'] !== undefined) return fail('give --url or --port-base, not both');
  const base = flags['port-base'] === undefined ? DEFAULT_PORT_BASE : Number(flags['port-base']);
  if (!Number.isInteger(base) || base < 1 || base + SIGNAL_PORT_OFFSET > 65535) return fail(`--port-base must be an integer from 1 to ${65535 - SIGNAL_PORT_OFFSET}, got ${flags['port-base']}`);
  const url = flags.url ?? `ws://127.0.0.1:${base + SIGNAL_PORT_OFFSET}/signal`;
  if (!/^wss?:\/\//.test(url)) return fail(`--url must be a ws:// or wss:// URL, got ${url}`);
  const room = flags.room ?? 'demo';
  if (!ROOM_RE.test(room)) return fail(`--room must be 1-64 characters of [A-Za-z0-9_-], got ${JSON.stringify(room)}`);
  const label = flags.label ?? 'chat';
  if (label.length === 0 || Buffer.byteLength(label) > 65535) return fail('--label must be 1-65535 bytes');
  const timeoutMs = flags['timeout-ms'] === undefined ? WEBRTC_PEER_DEFAULTS.connectTimeoutMs : Number(flags['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) return fail(`--timeout-ms must be an integer from 1 to 600000, got ${flags['timeout-ms']}`);

  let signal: SignalingClient;
  try {
    signal = await connectSignaling({ url, room, tracer, timeoutMs });
  } catch (err) {
    console.error(`wirelab webrtc: could not join room ${room} at ${url}: ${(err as Error).message} (is wirelab up running? else --url)`);
    return 1;
  }
  const note = (line: string): void => void process.stderr.write(`${line}\n`);
  note(`joined room ${room} at ${url} as ${signal.id}; peers already there: ${signal.peers.join(', ') || 'none'}`);

  const remotes = new Map<string, Remote>();
  const waiting: string[] = [];
  let stopping = false;

  const print = (from: string, ch: PeerChannel): void => {
    const read = async (): Promise<void> => {
      while (!stopping && remotes.get(from)?.peer.pc.connectionState !== 'closed') {
        const m = await ch.next(60_000).catch((err: { code?: string }) => (err.code === ErrorCodes.CLOSED ? null : undefined));
        if (m === null) return; // the channel closed: nothing more will arrive on it
        if (!m) continue;
        const text = typeof m.data === 'string' ? m.data : `[${m.data.length} bytes] ${m.data.toString('hex').slice(0, 64)}`;
        process.stdout.write(`${from} ${ch.label}: ${text}\n`);
      }
    };
    void read();
  };

  const send = (r: Remote, line: string): void => {
    try {
      r.out?.send(line);
    } catch (err) {
      note(`not sent to ${r.peer.remote}: ${(err as Error).message}`);
    }
  };

  const connected = async (id: string, r: Remote): Promise<void> => {
    const labels = new Set<string>([...PAGE_CHANNELS, label]);
    const out = await r.peer.channel(label, timeoutMs);
    r.out = out;
    for (const l of labels) {
      const ch = l === label ? out : r.peer.channels.get(l) ?? (await r.peer.channel(l, 1000).catch(() => undefined));
      if (ch) print(id, ch);
    }
    note(`connected to ${id}: channel ${label} open${describePair(r.peer)}`);
    for (const line of waiting.splice(0)) send(r, line);
  };

  const start = (id: string, caller: boolean): void => {
    if (remotes.has(id) || stopping) return;
    const peer = createWebRtcPeer({ tracer, connectTimeoutMs: timeoutMs });
    const r: Remote = { peer };
    remotes.set(id, r);
    if (caller) for (const l of new Set<string>([...PAGE_CHANNELS, label])) peer.createChannel(l, l === 'unreliable' ? { ordered: false, maxRetransmits: 0 } : {});
    const negotiate = caller ? peer.call(signal, id) : peer.answer(signal, id);
    negotiate
      .then(() => connected(id, r))
      .catch(async (err: Error) => {
        note(`no connection with ${id}: ${err.message}`);
        remotes.delete(id);
        await peer.close().catch(() => undefined);
      });
  };

  for (const id of signal.peers) start(id, true);
  signal.on('peer-joined', (m) => start(m.peer, false));
  const gone = (id: string, why: string): void => {
    const r = remotes.get(id);
    if (!r) return;
    remotes.delete(id);
    note(`${id} ${why}`);
    void r.peer.close().catch(() => undefined);
  };
  signal.on('peer-left', (m) => gone(m.peer, 'left the room'));
  signal.on('bye', (m) => gone(String(m.from), 'hung up'));
  signal.on('error', (m) => note(`signaling error ${m.code}: ${m.message}`));

  const lines = new LineSplitter(
    WEBRTC_PEER_DEFAULTS.maxMessageSize,
    (line) => {
      const open = [...remotes.values()].filter((r) => r.out);
      if (open.length === 0) {
        waiting.push(line);
        if (waiting.length > MAX_WAITING_LINES) waiting.shift();
        return;
      }
      for (const r of open) send(r, line);
    },
    (bytes) => note(`line of ${bytes} bytes not sent: over the data channel's max-message-size ${WEBRTC_PEER_DEFAULTS.maxMessageSize}`),
  );

  const why = await new Promise<'stdin' | 'signal' | 'closed'>((resolve) => {
    process.stdin.on('data', (d: Buffer) => lines.push(d));
    process.stdin.once('end', () => {
      lines.end();
      resolve('stdin');
    });
    process.stdin.on('error', () => resolve('stdin'));
    process.once('SIGINT', () => resolve('signal'));
    process.once('SIGTERM', () => resolve('signal'));
    signal.once('closed', () => resolve('closed'));
  });
  if (why === 'stdin' && waiting.length > 0) {
    // Piped input (`echo hi | wirelab webrtc`): wait for a peer to take the lines, up to the connect timeout.
    const deadline = Date.now() + timeoutMs;
    while (waiting.length > 0 && Date.now() < deadline && !stopping) await sleep(50);
    if (waiting.length > 0) note(`${waiting.length} line(s) not sent: no peer connected within ${timeoutMs} ms`);
  }
  stopping = true;
  // Let SCTP deliver what was sent before hanging up.
  for (const r of remotes.values()) {
    for (let i = 0; i < 40 && r.out && r.out.raw.bufferedAmount > 0; i++) await sleep(25);
    if (r.out) await sleep(100);
  }
  await Promise.allSettled([...remotes.values()].map((r) => r.peer.hangUp()));
  if (why !== 'closed') {
    signal.send({ type: 'leave' });
    await signal.close().catch(() => undefined);
  } else note('the signaling server closed the connection');
  await tracer.close();
  note(`left room ${room}`);
  return why === 'closed' ? 1 : 0;
}
