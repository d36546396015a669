import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, WirelabError } from '../errors.ts';
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
}

/**
 * Starts tcpdump on the loopback interface with a BPF filter such as `tcp port 7007 or udp port 7007`; resolves once
 * it is listening. Only headers are kept (snaplen 128) unless `snaplen` says more (0: whole frames).
 */
export async function startCapture(filter: string, options: { iface?: string; timeoutMs?: number; snaplen?: number } = {}): Promise<Capture> {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-cap-'));
  const file = join(dir, 'cap.pcap');
  const child: ChildProcess = spawn('tcpdump', ['-i', options.iface ?? 'lo', '-Z', 'root', '-n', '-U', '--immediate-mode', '-s', String(options.snaplen ?? 128), '-w', file, filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new WirelabError(ErrorCodes.CAPTURE_FAILED, `tcpdump did not start listening within ${options.timeoutMs ?? 5000} ms: ${stderr.trim()}`));
    }, options.timeoutMs ?? 5000);
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
  let stopped: Promise<Buffer> | undefined;
  const stop = async (): Promise<Buffer> => {
    // Give the last packets a moment to be written (-U flushes per packet), then stop our own tcpdump.
    await sleep(50);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
    try {
      return await readFile(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const stopRaw = (): Promise<Buffer> => (stopped ??= stop());
  return { stopRaw, stop: async () => parsePcap(await stopRaw()) };
}
