import type { WebSocket } from 'ws';
import { connectWs, type WsClient, type WsMessage } from '../clients/ws.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { startTcpRelay } from '../core/relay.ts';
import { sleep } from '../core/time.ts';
import { FrameObserver, startWsServer } from '../servers/ws/index.ts';

/** Messages each end sends in its burst, and the pause between two of them. */
const BURST = 20;
const PACE_MS = 10;

/** What crossed the tap on one connection, in order: the first bytes each way, and (in clear) each frame. */
interface Wire {
  firstUp: Buffer;
  firstDown: Buffer;
  bytes: { '>': Buffer[]; '<': Buffer[] };
  /** Frames parsed after the HTTP upgrade (ws:// only: on wss:// the tap sees TLS records). */
  frames: Array<{ dir: '>' | '<'; opcode: number; closeCode?: number; closeReason?: string }>;
  /** Direction of each chunk, in the order the tap forwarded them. */
  chunks: Array<'>' | '<'>;
}

/** The server's side of one connection: what it counted, and how it ended. */
interface ServerSide {
  counted: number;
  gotWhileSending: number;
  close?: { code: number; reason: string };
}

/**
 * A relay in front of a server that keeps, per connection, the first chunk each way and parses WebSocket frames after
 * the HTTP upgrade (meaningful only in clear: over TLS the frames are inside encrypted records).
 */
async function startTap(ctx: LabContext, port: number) {
  const conns = new Map<number, Wire & { observers: Record<'>' | '<', FrameObserver>; head: Record<'>' | '<', boolean> }>();
  const relay = await ctx.start(
    startTcpRelay({
      target: { port },
      onForward: (dir, chunk, conn) => {
        let w = conns.get(conn);
        if (!w) {
          const frames: Wire['frames'] = [];
          w = {
            firstUp: Buffer.alloc(0),
            firstDown: Buffer.alloc(0),
            bytes: { '>': [], '<': [] },
            frames,
            chunks: [],
            observers: {
              '>': new FrameObserver((f) => frames.push({ dir: '>', opcode: f.opcode, closeCode: f.closeCode, closeReason: f.closeReason })),
              '<': new FrameObserver((f) => frames.push({ dir: '<', opcode: f.opcode, closeCode: f.closeCode, closeReason: f.closeReason })),
            },
            head: { '>': true, '<': true },
          };
          conns.set(conn, w);
        }
        if (dir === '>' && w.firstUp.length === 0) w.firstUp = Buffer.from(chunk);
        if (dir === '<' && w.firstDown.length === 0) w.firstDown = Buffer.from(chunk);
        w.bytes[dir].push(Buffer.from(chunk));
        w.chunks.push(dir);
        let rest = chunk;
        if (w.head[dir]) {
          // The HTTP head of the upgrade, then frames (a head split across chunks is not expected on loopback).
          const end = chunk.indexOf('\r\n\r\n');
          if (end < 0) return;
          w.head[dir] = false;
          rest = chunk.subarray(end + 4);
        }
        if (rest.length > 0) w.observers[dir].push(rest);
      },
    }),
  );
  return { port: relay.port, conns };
}

export default defineLab({
  id: 'websocket-lifecycle',
  title: 'WebSocket: full duplex, stateful until either side closes, over ws:// and wss://',
  concept: 'After one HTTP Upgrade a WebSocket is a long-lived connection both ends write to at any time, with per-connection state, until one side sends a close frame the other answers.',
  protocols: ['ws', 'wss', 'tls'],
  timeoutMs: 30_000,
  async run(ctx) {
    const servers: ServerSide[] = [];
    // /session: "go" starts the server's own paced burst; "c…" messages are counted per connection; "count?" asks
    // the count; "close-me" makes the server close with 4000.
    const session = (ws: WebSocket): void => {
      const side: ServerSide = { counted: 0, gotWhileSending: 0 };
      servers.push(side);
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      ws.on('message', (data: Buffer) => {
        const text = data.toString('utf8');
        if (text === 'go') {
          timer = setInterval(() => {
            if (sent >= BURST || ws.readyState !== ws.OPEN) return clearInterval(timer);
            ws.send(`s${sent++}`);
          }, PACE_MS);
        } else if (text === 'count?') ws.send(`counted ${side.counted}`);
        else if (text === 'close-me') ws.close(4000, 'server ends the session');
        else if (/^c\d+$/.test(text)) {
          side.counted++;
          if (sent > 0 && sent < BURST) side.gotWhileSending++;
        }
      });
      ws.on('close', (code: number, reason: Buffer) => {
        clearInterval(timer);
        side.close = { code, reason: reason.toString('utf8') };
      });
    };
    const paths = { '/session': session };
    const plain = await ctx.start(startWsServer({ tracer: ctx.tracer, paths, heartbeatMs: 0 }));
    const secure = await ctx.start(startWsServer({ tracer: ctx.tracer, paths, heartbeatMs: 0, tls: true }));

    const rows: Array<Array<string | number>> = [];
    const results: Record<string, { ok: boolean; wireOk: boolean; evidence: string }> = {};
    for (const [scheme, server] of [['ws', plain], ['wss', secure]] as const) {
      const tap = await startTap(ctx, server.port);
      const url = `${scheme}://127.0.0.1:${tap.port}/session`;

      // Connection A: both ends send a paced burst at once; then the count; then the client closes.
      const a = await connectWs({ url, tracer: ctx.tracer });
      ctx.defer(() => a.terminate());
      const serverA = servers[servers.length - 1]!;
      await a.send('go');
      const sentAt: number[] = [];
      for (let i = 0; i < BURST; i++) {
        await a.send(`c${i}`);
        sentAt.push(performance.now());
        await sleep(PACE_MS);
      }
      const got: WsMessage[] = [];
      while (got.length < BURST) got.push(await a.next());
      const duringBurst = got.filter((m) => m.at > sentAt[0]! && m.at < sentAt[BURST - 1]!).length;
      await a.send('count?');
      const countA = (await readUntil(a, 'counted')).slice('counted '.length);
      const closedByClient = await a.close(1000, 'client done');
      await waitFor(() => serverA.close !== undefined);

      // Connection B: a new connection starts from nothing; then the server closes it.
      const b = await connectWs({ url, tracer: ctx.tracer });
      ctx.defer(() => b.terminate());
      const serverB = servers[servers.length - 1]!;
      await b.send('count?');
      const countB = (await readUntil(b, 'counted')).slice('counted '.length);
      await b.send('close-me');
      const closedByServer = await b.closed;
      await waitFor(() => serverB.close !== undefined);

      const [wireA, wireB] = [...tap.conns.values()];
      // Direction changes in the order the tap forwarded chunks during the data phase: 1 would be "all up, then all down".
      const switches = (w: Wire | undefined): number => (w ? w.chunks.slice(2).filter((d, i, all) => i > 0 && d !== all[i - 1]).length : 0);
      const closes = (w: Wire | undefined): string =>
        (w?.frames ?? []).filter((f) => f.opcode === 8).map((f) => `${f.dir} close ${f.closeCode} "${f.closeReason}"`).join(', ');
      const upText = wireA?.firstUp.toString('latin1') ?? '';
      const allUp = Buffer.concat(wireA?.bytes['>'] ?? []).toString('latin1');
      const tls = wireA?.firstUp[0] === 0x16 && wireA.firstUp[1] === 0x03;
      rows.push(
        [scheme, 'first bytes client → server', tls ? `TLS record ${hex(wireA!.firstUp)} (ClientHello)` : JSON.stringify(upText.split('\r\n')[0])],
        [scheme, '"Upgrade: websocket" readable on the wire', /upgrade: websocket/i.test(allUp) ? 'yes' : 'no'],
        [scheme, `server messages received while the client was still sending its ${BURST}`, duringBurst],
        [scheme, 'client messages the server got while still sending its own', serverA.gotWhileSending],
        [scheme, 'direction changes on the wire (connection A)', switches(wireA)],
        [scheme, 'count on A / on a new connection B', `${countA} / ${countB}`],
        [scheme, 'client close: client saw / server saw', `${closedByClient.code} / ${serverA.close?.code} "${serverA.close?.reason}"`],
        [scheme, 'server close: client saw / server saw', `${closedByServer.code} "${closedByServer.reason}" / ${serverB.close?.code}`],
        [scheme, 'close frames the tap parsed (A; B)', `${closes(wireA) || 'none readable'}; ${closes(wireB) || 'none readable'}`],
      );

      const duplex = duringBurst > 0 && serverA.gotWhileSending > 0 && switches(wireA) >= 4;
      ctx.claim(
        `${scheme}: full duplex: each end received the other's messages while still sending its own, interleaved on one connection`,
        duplex,
        `client got ${duringBurst}/${BURST} during its burst, server got ${serverA.gotWhileSending}/${BURST} during its own; ${switches(wireA)} direction changes at the tap`,
      );
      ctx.claim(
        `${scheme}: stateful: the server's count lives as long as the connection (A counted ${BURST}, a new connection B starts at 0)`,
        countA === String(BURST) && countB === '0',
        `A: ${countA}, B: ${countB}`,
      );
      ctx.claim(
        `${scheme}: either side may close: the client's 1000 reached the server, the server's 4000 reached the client`,
        closedByClient.code === 1000 && serverA.close?.code === 1000 && serverA.close.reason === 'client done' && closedByServer.code === 4000 && closedByServer.reason === 'server ends the session' && serverB.close?.code === 4000,
        `A: client ${closedByClient.code}, server ${serverA.close?.code}; B: client ${closedByServer.code} "${closedByServer.reason}", server ${serverB.close?.code}`,
      );
      // What a tap can read: the server's frames are unmasked, so its texts are in clear on ws:// and only there.
      const down = Buffer.concat([...(wireA?.bytes['<'] ?? []), ...(wireB?.bytes['<'] ?? [])]).toString('latin1');
      const clearTexts = [`counted ${BURST}`, 'server ends the session'].filter((t) => down.includes(t));
      const serverTls = wireA?.firstDown[0] === 0x16 && wireA.firstDown[1] === 0x03;
      rows.push([scheme, 'server texts readable in the bytes server → client', clearTexts.map((t) => `"${t}"`).join(', ') || 'none']);
      results[scheme] = {
        ok: duplex,
        wireOk:
          scheme === 'ws'
            ? upText.startsWith('GET /session HTTP/1.1') && /upgrade: websocket/i.test(upText) && clearTexts.length === 2 &&
              closes(wireA).startsWith('> close 1000 "client done", < close 1000') && closes(wireB).startsWith('< close 4000 "server ends the session", > close 4000')
            : tls && serverTls && !/websocket/i.test(allUp) && clearTexts.length === 0,
        evidence:
          scheme === 'ws'
            ? `A: ${closes(wireA)}; B: ${closes(wireB)}; in clear: ${clearTexts.join(', ')}`
            : `client's first bytes ${hex(wireA?.firstUp ?? Buffer.alloc(0))}, server's ${hex(wireA?.firstDown ?? Buffer.alloc(0))}; no "websocket" in ${allUp.length} B up, none of the server's texts in ${down.length} B down`,
      };
    }
    ctx.table('one exchange over ws:// and over wss://, each through a tap', ['scheme', 'observed', 'value'], rows);
    ctx.claim(
      'ws://: the HTTP Upgrade and both closing handshakes are readable on the wire (close frame, then the answering close frame)',
      results.ws?.wireOk === true,
      results.ws?.evidence,
    );
    ctx.claim(
      'wss://: the same exchange, but the tap sees TLS records (0x16 0x03) first both ways, and neither the Upgrade nor any message text in clear',
      results.wss?.wireOk === true,
      results.wss?.evidence,
    );
  },
});

function hex(b: Buffer): string {
  return [...b.subarray(0, 3)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** The first message starting with `prefix` (the other end's burst may still be arriving). */
async function readUntil(c: WsClient, prefix: string): Promise<string> {
  for (;;) {
    const m = (await c.next()).data.toString('utf8');
    if (m.startsWith(prefix)) return m;
  }
}

/** The server's 'close' comes a moment after the client's; polls briefly for it (2 s at most). */
async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
}
