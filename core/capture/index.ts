import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, WirelabError } from '../errors.ts';
import { checkInt, withDefaults } from '../options.ts';
import { parsePcap, type Packet } from './pcap.ts';
import { sleep } from '../time.ts';

export { parsePcap, describePacket, pcapRecords, type Packet, type PcapRecord } from './pcap.ts';

export interface CaptureAvailability {
  ok: boolean;
  /** Why not, in words a lab can print. */
  reason?: string;
}

/** Captures need tcpdump (Debian package tcpdump) and root for the raw socket on lo. */
export function captureAvailable(): CaptureAvailability {
  if (process.platform !== 'linux') return { ok: false, reason: 'packet capture is only wired up on Linux' };
  if (spawnSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' }).status !== 0) {
    return { ok: false, reason: 'tcpdump is not installed (Debian package tcpdump; npm run peers)' };
  }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'capturing on lo needs root' };
  return { ok: true };
}

export interface Capture {
  /** Stops tcpdump (the process this capture started) and returns the packets it saw. Safe to call twice. */
  stop(): Promise<Packet[]>;
  /** Stops tcpdump and returns the pcap file it wrote, as it is (the frames up to the snaplen). Safe to call twice. */
  stopRaw(): Promise<Buffer>;
  /** True once the file reached maxBytes and tcpdump was stopped there: later packets are not in it. */
  readonly limited: boolean;
}

/** Every default of startCapture's options. */
export const CAPTURE_DEFAULTS = Object.freeze({
  /** Give up when tcpdump is not listening by then. */
  timeoutMs: 5000,
  /** Bytes per frame kept (0: whole frames). */
  snaplen: 128,
  /** The capture file's size at which tcpdump is stopped (a long `up --pcap-real` on a busy lo would fill the disk). */
  maxBytes: 256 * 1024 * 1024,
});

/** How often the capture file's size is looked at against maxBytes. */
const SIZE_CHECK_MS = 250;

/**
 * Starts tcpdump on the loopback interface with a BPF filter such as `tcp port 7007 or udp port 7007`; resolves once
 * it is listening. Only headers are kept (snaplen 128) unless `snaplen` says more (0: whole frames).
 */
export async function startCapture(filter: string, options: { iface?: string; timeoutMs?: number; snaplen?: number; maxBytes?: number } = {}): Promise<Capture> {
  const o = withDefaults(CAPTURE_DEFAULTS, options);
  checkInt('timeoutMs', o.timeoutMs, 1, 600_000);
  checkInt('snaplen', o.snaplen, 0, 262_144);
  checkInt('maxBytes', o.maxBytes, 1024, Number.MAX_SAFE_INTEGER);
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-cap-'));
  const file = join(dir, 'cap.pcap');
  const child: ChildProcess = spawn('tcpdump', ['-i', options.iface ?? 'lo', '-Z', 'root', '-n', '-U', '--immediate-mode', '-s', String(o.snaplen), '-w', file, filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new WirelabError(ErrorCodes.CAPTURE_FAILED, `tcpdump did not start listening within ${o.timeoutMs} ms: ${stderr.trim()}`));
    }, o.timeoutMs);
    child.stderr!.on('data', (d) => {
      stderr += d;
      if (stderr.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new WirelabError(ErrorCodes.CAPTURE_FAILED, `tcpdump exited (${code}): ${stderr.trim()}`));
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new WirelabError(ErrorCodes.CAPTURE_FAILED, `tcpdump did not start: ${err.message}`, { cause: err }));
    });
  });
  // Past maxBytes tcpdump is stopped (SIGINT: it writes whole records) and the capture says it was limited.
  let limited = false;
  const sizeCheck = setInterval(() => {
    stat(file).then(
      (st) => {
        if (st.size < o.maxBytes || limited) return;
        limited = true;
        clearInterval(sizeCheck);
        child.kill('SIGINT');
      },
      () => undefined,
    );
  }, SIZE_CHECK_MS);
  sizeCheck.unref();
  let stopped: Promise<Buffer> | undefined;
  const stop = async (): Promise<Buffer> => {
    clearInterval(sizeCheck);
    // Give the last packets a moment to be written (-U flushes per packet), then stop our own tcpdump.
    if (child.exitCode === null && child.signalCode === null) {
      await sleep(50);
      child.kill('SIGINT');
    }
    await exited;
    try {
      const raw = await readFile(file);
      // What tcpdump wrote between two checks past the limit is cut at the last whole record within it.
      if (raw.length < o.maxBytes) return raw;
      limited = true;
      return cutPcap(raw, o.maxBytes);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const stopRaw = (): Promise<Buffer> => (stopped ??= stop());
  return {
    stopRaw,
    stop: async () => parsePcap(await stopRaw()),
    get limited() {
      return limited;
    },
  };
}

/** The pcap file `raw` cut after its last whole record that ends within `max` bytes (the 24-byte header kept). */
export function cutPcap(raw: Buffer, max: number): Buffer {
  if (raw.length <= max || raw.length < 24) return raw;
  const le = raw.readUInt32LE(0) === 0xa1b2c3d4 || raw.readUInt32LE(0) === 0xa1b23c4d;
  let end = 24;
  for (;;) {
    if (end + 16 > raw.length) break;
    const next = end + 16 + (le ? raw.readUInt32LE(end + 8) : raw.readUInt32BE(end + 8));
    if (next > max || next > raw.length) break;
    end = next;
  }
  return raw.subarray(0, end);
}
