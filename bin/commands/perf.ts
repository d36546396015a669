import { untilStopped } from '../stop.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { runPerfClient, type PerfClientOptions } from '../perf/client.ts';
import { headerText, intervalText, parseBitrate, parseLength, summaryText } from '../perf/report.ts';
import { startPerfServer } from '../perf/server.ts';
import { PERF_PROTOS, type PerfProto } from '../perf/wire.ts';

export interface PerfFlags {
  port?: string;
  client?: string;
  proto?: string;
  time?: string;
  parallel?: string;
  reverse?: boolean;
  bitrate?: string;
  length?: string;
  interval?: string;
  impair?: string[];
  json?: boolean;
}

/** Each protocol's default -l: iperf3's 128 KiB for TCP, a datagram that fits the 1500-byte MTU for UDP. */
const DEFAULT_LEN: Record<PerfProto, number> = { tcp: 128 * 1024, udp: 1448, ws: 128 * 1024, http: 1024 * 1024, webrtc: 60_000 };

function usage(message: string): number {
  console.error(`wirelab perf: ${message} (wirelab perf --help)`);
  return 2;
}

function int(text: string | undefined, name: string, def: number, min: number, max: number): number {
  if (text === undefined) return def;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${text}`);
  return n;
}

/** `wirelab perf server [-p PORT]` / `wirelab perf client -c HOST [--proto P] [-t S] [-P N] [-R] [-b RATE] [-l LEN]`. */
export async function perfCommand(args: string[], flags: PerfFlags, tracer: Tracer): Promise<number> {
  const mode = args[0];
  let port: number;
  try {
    port = int(flags.port, '-p', 5201, 0, 65532);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (mode === 'server') {
    const server = await startPerfServer({ port, tracer }).catch((err: Error) => err);
    if (server instanceof Error) {
      console.error(`wirelab perf: the server did not start: ${server.message}`);
      return 1;
    }
    const p = server.ports;
    if (flags.json) process.stdout.write(JSON.stringify({ host: server.host, ...p }) + '\n');
    else console.log(`-----------------------------------------------------------\nServer listening on ${p.tcp} (tcp, udp); http ${p.http}, ws ${p.ws}, webrtc signaling ${p.signal}\n-----------------------------------------------------------`);
    await untilStopped();
    await server.close();
    return 0;
  }
  if (mode !== 'client') return usage(`expected server or client, got ${mode}`);
  let o: PerfClientOptions;
  try {
    const proto = (flags.proto ?? 'tcp') as PerfProto;
    if (!PERF_PROTOS.includes(proto)) throw new Error(`--proto must be one of ${PERF_PROTOS.join(', ')}, got ${flags.proto}`);
    const rate = flags.bitrate === undefined ? (proto === 'udp' ? 1e6 : 0) : parseBitrate(flags.bitrate);
    if (!Number.isFinite(rate) || rate < 0) throw new Error(`-b must be a bit rate such as 100M, got ${flags.bitrate}`);
    const len = flags.length === undefined ? DEFAULT_LEN[proto] : parseLength(flags.length);
    const maxLen = proto === 'udp' ? 65_507 : proto === 'webrtc' ? 65_536 : 16 * 1024 * 1024;
    if (!Number.isInteger(len) || len < (proto === 'udp' ? 16 : 1) || len > maxLen) throw new Error(`-l must be from ${proto === 'udp' ? 16 : 1} to ${maxLen} bytes for ${proto}, got ${flags.length}`);
    const time = Number(flags.time ?? 10);
    if (!(time > 0 && time <= 3600)) throw new Error(`-t must be seconds from 0 to 3600, got ${flags.time}`);
    const interval = Number(flags.interval ?? 1);
    if (!(interval >= 0.1 && interval <= 60)) throw new Error(`-i must be seconds from 0.1 to 60, got ${flags.interval}`);
    if ((flags.impair?.length ?? 0) > 1) throw new Error('--impair once (one spec, comma-separated: latency=20ms,loss=1%)');
    o = {
      host: flags.client ?? '127.0.0.1',
      port,
      proto,
      time,
      streams: int(flags.parallel, '-P', 1, 1, 128),
      reverse: flags.reverse === true,
      rate,
      len,
      interval,
      ...(flags.impair?.[0] ? { impair: flags.impair[0] } : {}),
      tracer,
    };
  } catch (err) {
    return usage((err as Error).message);
  }
  if (!flags.json) for (const l of headerText(o)) console.log(l);
  try {
    const r = await runPerfClient(o, (iv) => {
      if (!flags.json) for (const l of intervalText(iv)) console.log(l);
    });
    if (flags.json) process.stdout.write(JSON.stringify(r) + '\n');
    else for (const l of summaryText(r)) console.log(l);
    return 0;
  } catch (err) {
    console.error(`wirelab perf: ${(err as Error).message}`);
    return 1;
  } finally {
    await tracer.close();
  }
}
