import net from 'node:net';
import { captureAvailable, startCapture, type Capture, type Packet } from '../core/capture/index.ts';
import { crc32 } from '../core/crc32.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { sleep } from '../core/time.ts';

/** Bytes of one write. */
const CHUNK = 64 * 1024;
/** No 'drain' for this long after write() said false: the kernel takes nothing more, the writer is blocked. */
const STALL_MS = 500;

interface Reader {
  port: number;
  /** The reader's side of the one connection, paused as soon as it is accepted. */
  socket: Promise<net.Socket>;
  read: number;
  crc: number;
}

/** A TCP server that accepts one connection and reads nothing until told to: the reader that stops reading. */
async function startReader(ctx: LabContext): Promise<Reader> {
  const server = net.createServer();
  server.on('error', (err) => ctx.note(`reader server: ${err.message}`));
  let accepted!: (s: net.Socket) => void;
  const r: Reader = { port: 0, socket: new Promise((res) => (accepted = res)), read: 0, crc: 0 };
  server.on('connection', (s) => {
    s.pause();
    s.on('error', (err) => ctx.note(`reader: ${err.message}`));
    s.on('data', (d: Buffer) => {
      r.read += d.length;
      r.crc = crc32(d, r.crc);
    });
    accepted(s);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  r.port = (server.address() as net.AddressInfo).port;
  ctx.defer(() => new Promise<void>((res) => server.close(() => res())));
  return r;
}

/** Sequence-number arithmetic (mod 2^32). */
const minus1 = (n: number): number => (n + 0xffffffff) % 0x100000000;

function analyse(packets: Packet[], readerPort: number): { zeroWindows: number; firstZeroAt?: number; probes: Packet[]; answers: number[]; update?: Packet; lastWindows: number[] } {
  const tcp = packets.filter((p) => p.proto === 'tcp' && (p.sport === readerPort || p.dport === readerPort));
  const fromReader = tcp.filter((p) => p.sport === readerPort);
  const zero = fromReader.filter((p) => p.window === 0 && !p.flags.includes('SYN') && !p.flags.includes('RST'));
  const firstZero = zero[0];
  const probes: Packet[] = [];
  const answers: number[] = [];
  let lastAck: number | undefined;
  let lastWindow: number | undefined;
  let update: Packet | undefined;
  let awaitingAnswer = false;
  for (const p of tcp) {
    if (p.sport === readerPort) {
      // The reader's next segment after a probe: its answer, with the window still closed.
      if (awaitingAnswer) answers.push(p.window ?? -1);
      awaitingAnswer = false;
      if (lastWindow === 0 && (p.window ?? 0) > 0 && !update) update = p;
      lastAck = p.ack;
      lastWindow = p.window;
    } else if (lastWindow === 0 && lastAck !== undefined && p.payload <= 1 && p.seq === minus1(lastAck) && !p.flags.includes('FIN')) {
      // Linux's zero-window probe: a segment one byte behind what the reader acknowledged (tcp_xmit_probe_skb).
      // A probe before the last one was answered: that one went unanswered.
      if (awaitingAnswer) answers.push(NaN);
      probes.push(p);
      awaitingAnswer = true;
    }
  }
  const beforeZero = firstZero ? fromReader.filter((p) => p.t <= firstZero.t && !p.flags.includes('SYN')).map((p) => p.window ?? 0) : [];
  return { zeroWindows: zero.length, ...(firstZero ? { firstZeroAt: firstZero.t } : {}), probes, answers, ...(update ? { update } : {}), lastWindows: beforeZero.slice(-6) };
}

export default defineLab({
  id: 'flow-control',
  title: 'Flow control: a reader that stops reading stops the writer',
  concept: "TCP's receiver advertises how much it can still take (the receive window); a reader that stops reading lets its buffer fill, the window falls to 0, the sender's kernel stops sending and only probes, and the writing application is told to wait (write() returns false, 'drain' comes only when the reader reads again).",
  protocols: ['tcp'],
  timeoutMs: 45_000,
  params: {
    hold: { kind: 'duration', default: '2s', min: 700, max: 30_000, help: 'how long the reader keeps not reading once the writer is blocked (zero-window probes come at 0.2 s, 0.6 s, 1.4 s, ...)' },
  },
  async run(ctx) {
    const HOLD = ctx.params.hold;
    const reader = await startReader(ctx);
    const avail = captureAvailable();
    let capture: Capture | undefined;
    if (avail.ok) {
      const running = await startCapture(`tcp port ${reader.port}`);
      capture = running;
      ctx.defer(() => running.stop());
    } else {
      ctx.note(`not observed on this machine: the advertised window and the zero-window probes (a capture): ${avail.reason}`);
    }

    const writer = net.connect(reader.port, '127.0.0.1');
    writer.on('error', (err) => ctx.note(`writer: ${err.message}`));
    await new Promise<void>((res) => writer.once('connect', () => res()));
    ctx.defer(() => writer.destroy());
    const readerSocket = await reader.socket;

    // Write until the kernel takes no more: write() returns false when Node's own buffer passes its high-water mark;
    // 'drain' then says the kernel took it. When no 'drain' comes for STALL_MS, the writer is blocked.
    const chunk = Buffer.alloc(CHUNK);
    for (let i = 0; i < CHUNK; i++) chunk[i] = (i * 31) & 0xff;
    let written = 0;
    let crc = 0;
    let falses = 0;
    let drains = 0;
    writer.on('drain', () => drains++);
    const t0 = performance.now();
    for (;;) {
      const ok = writer.write(chunk);
      written += CHUNK;
      crc = crc32(chunk, crc);
      if (ok) continue;
      falses++;
      const drained = await Promise.race([new Promise<boolean>((res) => writer.once('drain', () => res(true))), sleep(STALL_MS).then(() => false)]);
      if (!drained) break;
      if (performance.now() - t0 > 20_000) break;
    }
    const blockedAfterMs = performance.now() - t0;
    const inKernel = written - writer.writableLength;
    const drainsWhileBlocked = drains;
    await sleep(HOLD);
    const stillQueued = writer.writableLength;
    const drainsDuringHold = drains - drainsWhileBlocked;

    // The reader reads again: everything must arrive, and only now may 'drain' come.
    const resumedAt = performance.now();
    const drainAfter = new Promise<number>((res) => writer.once('drain', () => res(performance.now() - resumedAt)));
    readerSocket.resume();
    const drainMs = await Promise.race([drainAfter, sleep(15_000).then(() => NaN)]);
    writer.end();
    for (let i = 0; i < 750 && reader.read < written; i++) await sleep(20);

    ctx.table('the writer', ['handed to write()', 'taken by the kernel when blocked', "left in Node's buffer", 'write() returned false', "'drain' while blocked"], [
      [`${(written / 1024 / 1024).toFixed(1)} MiB`, `${(inKernel / 1024).toFixed(0)} KiB`, `${(stillQueued / 1024).toFixed(0)} KiB`, falses, drainsDuringHold],
    ]);
    ctx.measure('bytes the two kernels held for a reader that does not read (send + receive buffers)', inKernel, 'B');
    ctx.claim(
      `the writer was told to wait: write() returned false and no 'drain' came for ${STALL_MS + HOLD} ms while the reader did not read`,
      falses > 0 && drainsDuringHold === 0 && stillQueued > 0,
      `write() false ${falses} times; blocked after ${(blockedAfterMs / 1000).toFixed(2)} s with ${(stillQueued / 1024).toFixed(0)} KiB still in Node's buffer`,
    );
    ctx.claim(
      `once the reader read again, 'drain' came and all ${written.toLocaleString('en')} bytes arrived intact (CRC-32)`,
      Number.isFinite(drainMs) && reader.read === written && reader.crc === crc,
      `'drain' ${drainMs.toFixed(0)} ms after resume(); ${reader.read.toLocaleString('en')} B read, CRC ${reader.crc === crc ? 'equal' : 'differs'}`,
    );

    if (capture) {
      const a = analyse(await capture.stop(), reader.port);
      ctx.table('the reader\'s advertised window, from the capture', ['last windows before 0 (raw field)', 'zero-window segments', 'zero-window probes', 'probe times (ms after the first 0)', 'window update'], [
        [a.lastWindows.join(' → '), a.zeroWindows, a.probes.length, a.probes.map((p) => Math.round(p.t - (a.firstZeroAt ?? 0))).join(', '), a.update ? `${a.update.window} at +${Math.round(a.update.t - (a.firstZeroAt ?? 0))} ms` : 'none'],
      ]);
      ctx.claim('the capture shows the receive window falling to 0: the reader\'s kernel advertised a zero window', a.zeroWindows > 0, `${a.zeroWindows} segments with window 0; before it: ${a.lastWindows.join(' → ')}`);
      const gaps = a.probes.slice(1).map((p, i) => p.t - a.probes[i]!.t);
      ctx.claim(
        `the writer's kernel sent zero-window probes (a segment one byte behind the acknowledged data) while the window stayed 0, and the reader answered them with window 0 until it read again`,
        a.probes.length >= 1 && a.answers.some((w) => w === 0) && a.answers.slice(0, -1).every((w) => w === 0 || Number.isNaN(w)),
        `${a.probes.length} probes, answered with windows ${a.answers.map((w) => (Number.isNaN(w) ? 'none' : w)).join(', ')}${gaps.length ? `; gaps ${gaps.map((g) => Math.round(g)).join(', ')} ms` : ''}`,
      );
      if (a.answers.some((w) => Number.isNaN(w))) {
        ctx.note('a probe went unanswered: Linux answers an out-of-window segment (a probe is one) at most once per net.ipv4.tcp_invalid_ratelimit (500 ms by default).');
      }
      if (gaps.length >= 2) {
        ctx.claim('the probes backed off: each gap longer than the one before (exponential backoff of the probe timer)', gaps.every((g, i) => i === 0 || g > gaps[i - 1]!), `gaps ${gaps.map((g) => Math.round(g)).join(', ')} ms`);
      }
      ctx.claim('when the reader read again its kernel opened the window (a window update) and data flowed', a.update !== undefined, a.update ? `window ${a.update.window} (raw) after the zero` : 'no update seen');
    }
  },
});
