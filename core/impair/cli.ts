import type { ServiceEntry } from '../registry.ts';
import type { RunningServer } from '../server.ts';
import type { Tracer } from '../trace/index.ts';
import { ErrorCodes, WirelabError } from '../errors.ts';
import { startControlApi, type ControlApiOptions, type RunningControlApi } from './control.ts';
import { startTcpProxy } from './tcp/proxy.ts';
import { parseToxic, type Stream, type Toxic } from './toxics.ts';
import { describeImpairments, parseImpairments, type UdpImpairments } from './udp/impairments.ts';
import { startUdpRelay } from './udp/relay.ts';

/**
 * `wirelab up --impair SPEC` (repeatable; `;` also separates specs):
 *
 *   SPEC   = [TARGET:]ITEM(,ITEM)*
 *   TARGET = a service name (tcp-echo), a transport (tcp, udp), or nothing for every service
 *   ITEM   = KEY=VALUE, KEY@up=VALUE or KEY@down=VALUE (client → server, server → client; default both ways)
 *
 * TCP keys (Toxiproxy's toxics): latency=20ms jitter=5ms bandwidth=1mbit slow_close=500ms timeout=1s reset_peer=2s
 *   slicer=SIZE[/VARIATION[/DELAY_US]] limit_data=BYTES toxicity=0.5
 * UDP keys: loss=5% burst=P/R (Gilbert-Elliott) dup=1% reorder=5% delay=20ms jitter=5ms corrupt=0.1% rate=1mbit
 *   queue=100 seed=N
 */
export interface ImpairPlan {
  target?: string;
  /** Per direction. */
  tcp: Record<Stream, Toxic[]>;
  udp: Record<Stream, UdpImpairments>;
  seed?: number;
  /** Keys that only mean something to UDP (loss, dup...) or only to TCP (slow_close, reset_peer...). */
  udpOnly: string[];
  tcpOnly: string[];
  /** As given, for the table. */
  text: string;
}

function bad(message: string): WirelabError {
  return new WirelabError(ErrorCodes.IMPAIR_INVALID, `--impair: ${message}`);
}

const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };
function ms(v: string, key: string): number {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s)?$/.exec(v);
  if (!m) throw bad(`${key}=${v}: expected a time such as 20ms or 1.5s`);
  return Number(m[1]) * TIME[m[2] ?? 'ms']!;
}
function fraction(v: string, key: string): number {
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(v);
  if (!m) throw bad(`${key}=${v}: expected a probability such as 5% or 0.05`);
  return m[2] ? Number(m[1]) / 100 : Number(m[1]);
}
/** A rate in kbit/s: 1mbit, 500kbit, 125KB (kilobytes per second), 64kbps. */
function kbit(v: string, key: string): number {
  const m = /^(\d+(?:\.\d+)?)(kbit|mbit|gbit|kbps|mbps|KB|MB)$/.exec(v);
  if (!m) throw bad(`${key}=${v}: expected a rate such as 1mbit, 500kbit or 125KB (kilobytes/s)`);
  const f: Record<string, number> = { kbit: 1, kbps: 1, mbit: 1000, mbps: 1000, gbit: 1e6, KB: 8, MB: 8000 };
  return Number(m[1]) * f[m[2]!]!;
}
function count(v: string, key: string): number {
  if (!/^\d+$/.test(v)) throw bad(`${key}=${v}: expected a whole number`);
  return Number(v);
}

export function parseImpairSpecs(specs: string[] | string | undefined): ImpairPlan[] {
  const list = (Array.isArray(specs) ? specs : specs === undefined ? [] : [specs]).flatMap((s) => s.split(';')).map((s) => s.trim()).filter(Boolean);
  return list.map(parseOne);
}

function parseOne(text: string): ImpairPlan {
  const colon = text.indexOf(':');
  const eq = text.indexOf('=');
  const hasTarget = colon !== -1 && (eq === -1 || colon < eq);
  const target = hasTarget ? text.slice(0, colon) : undefined;
  const items = (hasTarget ? text.slice(colon + 1) : text).split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw bad(`"${text}" names no impairment`);
  const tcpAttrs: Record<Stream, Record<string, Record<string, number>>> = { upstream: {}, downstream: {} };
  const udp: Record<Stream, Record<string, unknown>> = { upstream: {}, downstream: {} };
  let toxicity = 1;
  let seed: number | undefined;
  const udpOnly: string[] = [];
  const tcpOnly: string[] = [];
  for (const item of items) {
    const m = /^([a-z_]+)(?:@(up|down))?=(.+)$/.exec(item);
    if (!m) throw bad(`"${item}": expected key=value, key@up=value or key@down=value`);
    const [, key, dir, v] = m as unknown as [string, string, 'up' | 'down' | undefined, string];
    const streams: Stream[] = dir === 'up' ? ['upstream'] : dir === 'down' ? ['downstream'] : ['upstream', 'downstream'];
    if (['loss', 'burst', 'dup', 'duplicate', 'reorder', 'corrupt', 'queue'].includes(key)) udpOnly.push(key);
    if (['slow_close', 'timeout', 'reset_peer', 'limit_data', 'slicer', 'toxicity'].includes(key)) tcpOnly.push(key);
    const both = (fn: (s: Stream) => void): void => streams.forEach(fn);
    const toxic = (type: string, attrs: Record<string, number>): void => both((s) => (tcpAttrs[s][type] = { ...tcpAttrs[s][type], ...attrs }));
    switch (key) {
      case 'latency':
      case 'delay':
        toxic('latency', { latency: ms(v, key) });
        both((s) => (udp[s].delayMs = ms(v, key)));
        break;
      case 'jitter':
        toxic('latency', { jitter: ms(v, key) });
        both((s) => (udp[s].jitterMs = ms(v, key)));
        break;
      case 'bandwidth':
      case 'rate':
        toxic('bandwidth', { rate: kbit(v, key) / 8 });
        both((s) => (udp[s].rateKbit = kbit(v, key)));
        break;
      case 'slow_close':
        toxic('slow_close', { delay: ms(v, key) });
        break;
      case 'timeout':
        toxic('timeout', { timeout: ms(v, key) });
        break;
      case 'reset_peer':
        toxic('reset_peer', { timeout: ms(v, key) });
        break;
      case 'limit_data':
        toxic('limit_data', { bytes: count(v, key) });
        break;
      case 'slicer': {
        const [size, variation, delay] = v.split('/');
        toxic('slicer', { average_size: count(size!, key), size_variation: count(variation ?? '0', key), delay: count(delay ?? '0', key) });
        break;
      }
      case 'toxicity':
        toxicity = fraction(v, key);
        break;
      case 'loss':
        both((s) => (udp[s].loss = fraction(v, key)));
        break;
      case 'burst': {
        const [p, r] = v.split('/');
        if (p === undefined || r === undefined) throw bad(`burst=${v}: expected P/R, e.g. burst=1%/30%`);
        both((s) => (udp[s].gilbert = { p: fraction(p, key), r: fraction(r, key) }));
        break;
      }
      case 'dup':
      case 'duplicate':
        both((s) => (udp[s].duplicate = fraction(v, key)));
        break;
      case 'reorder':
        both((s) => (udp[s].reorder = fraction(v, key)));
        break;
      case 'corrupt':
        both((s) => (udp[s].corrupt = fraction(v, key)));
        break;
      case 'queue':
        both((s) => (udp[s].queueLimit = count(v, key)));
        break;
      case 'seed':
        seed = count(v, key);
        break;
      default:
        throw bad(`unknown key ${key}; TCP: latency jitter bandwidth slow_close timeout reset_peer slicer limit_data toxicity; UDP: loss burst dup reorder delay jitter corrupt rate queue seed`);
    }
  }
  const tcp: Record<Stream, Toxic[]> = { upstream: [], downstream: [] };
  for (const s of ['upstream', 'downstream'] as const) {
    for (const [type, attributes] of Object.entries(tcpAttrs[s])) tcp[s].push(parseToxic({ type, stream: s, toxicity, attributes }));
  }
  const check = (imp: Record<string, unknown>): UdpImpairments => parseImpairments(imp);
  return { ...(target ? { target } : {}), tcp, udp: { upstream: check(udp.upstream), downstream: check(udp.downstream) }, ...(seed === undefined ? {} : { seed }), udpOnly, tcpOnly, text };
}

/** The plans that apply to one service: those naming it, its transport, or no target. */
export function plansFor(plans: ImpairPlan[], entry: Pick<ServiceEntry, 'name' | 'proto'>): ImpairPlan[] {
  return plans.filter((p) => p.target === undefined || p.target === entry.name || p.target === entry.proto);
}

/** Throws for a target that names no service, so a typo is a usage error rather than a silent no-op. */
export function checkTargets(plans: ImpairPlan[], services: Array<Pick<ServiceEntry, 'name' | 'proto'>>): void {
  for (const p of plans) {
    if (p.target !== undefined && !services.some((s) => s.name === p.target || s.proto === p.target)) {
      throw bad(`no service or transport ${p.target}; services: ${services.map((s) => s.name).join(', ')}`);
    }
    // A spec aimed at particular services must mean something to each of them (loss on TCP needs kernel mode).
    for (const s of services.filter((x) => p.target !== undefined && (x.name === p.target || x.proto === p.target))) {
      const wrong = s.proto === 'udp' ? p.tcpOnly : p.udpOnly;
      if (wrong.length > 0) throw bad(`${wrong.join(', ')} cannot apply to ${s.name} (${s.proto === 'udp' ? 'TCP-only toxics' : 'UDP-only impairments: a TCP stream cannot lose or reorder what it carries in userland'})`);
    }
  }
}

/**
 * Puts a started server behind a TCP proxy (tcp-based services) or a UDP relay (udp) listening on `port`, the port
 * the server would have had; registers it with the control API. The result closes both.
 */
export async function impairServer(
  entry: Pick<ServiceEntry, 'name' | 'proto'>,
  server: RunningServer,
  plans: ImpairPlan[],
  o: { host: string; port: number; tracer: Tracer; control?: RunningControlApi; sequenceOf?: (datagram: Buffer) => number | undefined },
): Promise<RunningServer & { impairment: string }> {
  const seed = plans.find((p) => p.seed !== undefined)?.seed;
  const common = { name: entry.name, host: o.host, port: o.port, upstreamHost: server.host, upstreamPort: server.port, tracer: o.tracer, ...(seed === undefined ? {} : { seed }) };
  if (entry.proto === 'udp') {
    const merge = (s: Stream): UdpImpairments => Object.assign({}, ...plans.map((p) => p.udp[s]));
    const relay = await startUdpRelay({ ...common, upstream: merge('upstream'), downstream: merge('downstream'), ...(o.sequenceOf ? { sequenceOf: o.sequenceOf } : {}) });
    o.control?.relays.set(entry.name, relay);
    const impairment = `up: ${describeImpairments(relay.get('upstream'))}; down: ${describeImpairments(relay.get('downstream'))}; seed ${relay.seed}`;
    return { proto: server.proto, host: relay.host, port: relay.port, impairment, close: async () => { await relay.close(); await server.close(); } };
  }
  const toxics = plans.flatMap((p) => [...p.tcp.upstream, ...p.tcp.downstream]);
  const proxy = await startTcpProxy({ ...common, toxics, ...(server.wireMask ? { wireMask: server.wireMask } : {}) });
  o.control?.proxies.set(entry.name, proxy);
  const impairment = plans.map((p) => p.text.replace(/^[^:=]*:/, '')).join(',');
  return { proto: server.proto, host: proxy.host, port: proxy.port, ...(server.url ? { url: server.url.replace(`:${server.port}`, `:${proxy.port}`) } : {}), impairment, close: async () => { await proxy.close(); await server.close(); } };
}

/** The control API for `wirelab up --impair`: on port base + 1474 (8474, Toxiproxy's, with the default base 7000). */
export function startUpControl(host: string, portBase: number, tracer: Tracer, wireMaskFor?: ControlApiOptions['wireMaskFor']): Promise<RunningControlApi> {
  const port = portBase === 0 || portBase + 1474 > 65535 ? 0 : portBase + 1474;
  return startControlApi({ host, port, tracer, ...(wireMaskFor ? { wireMaskFor } : {}) });
}
