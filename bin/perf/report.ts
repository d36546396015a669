// iperf3's text layout: interval lines, then a sender and a receiver summary line.
import type { PerfClientOptions, PerfInterval, PerfResult, PerfSide } from './client.ts';

const SI = ['', 'K', 'M', 'G', 'T'];

/** n in units of `base` (1024 for transfers, 1000 for rates, as iperf3 prints them), with K, M, G, T. */
function scaled(n: number, base: number, unit: string): string {
  let i = 0;
  let v = n;
  for (; v >= base && i < SI.length - 1; i++) v /= base;
  return `${v.toFixed(v >= 100 ? 0 : 2)} ${SI[i]}${unit}`;
}

/** 1.10 GBytes. */
export const bytesText = (n: number): string => scaled(n, 1024, 'Bytes');
/** 9.42 Gbits/sec. */
export const bitsText = (bps: number): string => scaled(bps, 1000, 'bits/sec');

/** 100M, 1.5G, 500k, 1000000 → bit/s (iperf3's -b). */
export function parseBitrate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG])?$/.exec(text.trim());
  if (!m) return NaN;
  return Math.round(Number(m[1]) * ({ k: 1e3, m: 1e6, g: 1e9 }[(m[2] ?? '').toLowerCase()] ?? 1));
}

/** 1400, 128K, 1M → bytes (iperf3's -l: 1024-based). */
export function parseLength(text: string): number {
  const m = /^(\d+)([kKmM])?$/.exec(text.trim());
  if (!m) return NaN;
  return Number(m[1]) * ({ k: 1024, m: 1024 * 1024 }[(m[2] ?? '').toLowerCase()] ?? 1);
}

const id = (s: string): string => `[${s.padStart(3)}]`;
const span = (a: number, b: number): string => `${a.toFixed(2).padStart(6)}-${b.toFixed(2).padEnd(6)} sec`;

export function headerText(o: PerfClientOptions): string[] {
  const who = o.reverse ? 'server sends' : 'client sends';
  return [
    `Connecting to host ${o.host}, port ${o.port} (${o.proto}, ${o.streams} stream${o.streams > 1 ? 's' : ''}, ${who}${o.rate ? `, ${bitsText(o.rate)} per stream` : ''}${o.impair ? `, impaired: ${o.impair}` : ''})`,
    `${id(' ID')} Interval           Transfer     Bitrate`,
  ];
}

export function intervalText(iv: PerfInterval): string[] {
  const lines = iv.streams.length > 1 ? iv.streams.map((b, k) => `${id(String(k + 1))} ${span(iv.start, iv.end)}  ${bytesText(b).padStart(12)}  ${bitsText(iv.end > iv.start ? (b * 8) / (iv.end - iv.start) : 0).padStart(16)}`) : [];
  lines.push(`${id(iv.streams.length > 1 ? 'SUM' : '1')} ${span(iv.start, iv.end)}  ${bytesText(iv.bytes).padStart(12)}  ${bitsText(iv.bitsPerSecond).padStart(16)}`);
  return lines;
}

function sideText(side: PerfSide | null, role: 'sender' | 'receiver', r: PerfResult): string {
  const tag = id(r.start.streams > 1 ? 'SUM' : '1');
  if (!side) return `${tag} ${span(0, r.start.time)}  ${'(not reported)'.padStart(30)}  ${role}`;
  const extra =
    r.start.proto === 'udp' && role === 'receiver'
      ? `  ${`${side.jitterMs?.toFixed(3)} ms`.padStart(10)}  ${side.lostPackets}/${(side.lostPackets ?? 0) + (side.packets ?? 0)} (${side.lostPercent}%)`
      : side.retransmits !== undefined
        ? `  ${String(side.retransmits ?? 'n/a').padStart(5)}`
        : '';
  return `${tag} ${span(0, side.seconds)}  ${bytesText(side.bytes).padStart(12)}  ${bitsText(side.bitsPerSecond).padStart(16)}${extra}  ${role}`;
}

export function summaryText(r: PerfResult): string[] {
  const udp = r.start.proto === 'udp';
  return [
    '- - - - - - - - - - - - - - - - - - - - - - - - -',
    `${id(' ID')} Interval           Transfer     Bitrate${udp ? '         Jitter    Lost/Total Datagrams' : '         Retr'}`,
    sideText(r.end.sender, 'sender', r),
    sideText(r.end.receiver, 'receiver', r),
    ...(udp || r.start.proto === 'webrtc' ? [] : ['(Retr: TCP segments the kernel retransmitted during the test, whole host, /proc/net/snmp)']),
  ];
}
