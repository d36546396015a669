/**
 * `wirelab impair`: the impairment proxies and relays of a running `wirelab up --impair` (or a lab's control API), over
 * the Toxiproxy-compatible control API, as toxiproxy-cli does: list, inspect, toggle, add / update / remove a toxic,
 * change a UDP relay, reset. Toxics and relay settings are written in `--impair`'s syntax (core/impair/cli.ts):
 * `latency=300ms,jitter@down=20ms`, `loss=5%,delay@down=20ms`.
 */
import Table from 'cli-table3';
import { DEFAULT_PORT_BASE } from '../../core/registry.ts';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { parseImpairSpecs } from '../../core/impair/cli.ts';
import { COMPACT } from '../../core/lab/report.ts';

export interface ImpairFlags {
  url?: string;
  'port-base'?: string;
  json?: boolean;
}

/** The control API's port above the port base (8474, Toxiproxy's, with the default base 7000). */
const CONTROL_OFFSET = 1474;
/** Longest wait for one answer of the control API. */
export const IMPAIR_REQUEST_TIMEOUT_MS = 10_000;

class Usage extends Error {}
class ApiError extends Error {}

interface ToxicJson {
  name: string;
  type: string;
  stream: string;
  toxicity: number;
  attributes: Record<string, number>;
}
interface ProxyJson {
  name: string;
  listen: string;
  upstream: string;
  enabled: boolean;
  toxics: ToxicJson[];
  stats?: Record<string, unknown>;
}

function baseUrl(flags: ImpairFlags): string {
  if (flags.url !== undefined && flags['port-base'] !== undefined) throw new Usage('give --url or --port-base, not both');
  if (flags.url !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(flags.url)) throw new Usage(`--url must be the control API, http://HOST:PORT, got ${flags.url}`);
    return flags.url.replace(/\/+$/, '');
  }
  const base = flags['port-base'] === undefined ? DEFAULT_PORT_BASE : Number(flags['port-base']);
  if (!Number.isInteger(base) || base < 1 || base + CONTROL_OFFSET > 65535) throw new Usage(`--port-base must be an integer from 1 to ${65535 - CONTROL_OFFSET}, got ${flags['port-base']}`);
  return `http://127.0.0.1:${base + CONTROL_OFFSET}`;
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  let r: Response;
  try {
    r = await fetch(base + path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }), signal: AbortSignal.timeout(IMPAIR_REQUEST_TIMEOUT_MS) });
  } catch (err) {
    throw new ApiError(`the control API at ${base} did not answer (${(err as Error).message}); is wirelab up running with --impair?`);
  }
  const text = await r.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!r.ok) throw new ApiError(`${method} ${path}: ${r.status} ${(parsed as { error?: string } | null)?.error ?? text}`);
  return parsed;
}

const describeToxic = (t: ToxicJson): string =>
  `${t.name}: ${t.type} ${t.stream} ${Object.entries(t.attributes).map(([k, v]) => `${k}=${v}`).join(' ')}${t.toxicity < 1 ? ` toxicity=${t.toxicity}` : ''}`;

/** k=v pairs of an update: numbers (Toxiproxy's units: ms, KB/s, bytes); `toxicity` apart from the attributes. */
function updateBody(pairs: string[]): Record<string, unknown> {
  const attributes: Record<string, number> = {};
  let toxicity: number | undefined;
  for (const p of pairs) {
    const m = /^([a-z_]+)=(-?\d+(?:\.\d+)?)$/.exec(p);
    if (!m) throw new Usage(`"${p}": expected key=number (Toxiproxy's units: latency=300, rate=125, toxicity=0.5)`);
    if (m[1] === 'toxicity') toxicity = Number(m[2]);
    else attributes[m[1]!] = Number(m[2]);
  }
  return { ...(Object.keys(attributes).length ? { attributes } : {}), ...(toxicity === undefined ? {} : { toxicity }) };
}

function need(args: string[], n: number, usage: string): void {
  if (args.length < n) throw new Usage(`usage: wirelab impair ${usage}`);
}

const enc = encodeURIComponent;

/** Runs one action, printing through `out`; throws with what exitCodeOf reads (in-process for tests). */
export async function runImpair(args: string[], flags: ImpairFlags, out: (line: string) => void): Promise<void> {
  const base = baseUrl(flags);
  const [verb = 'list', ...rest] = args;
  const print = (value: unknown, text: () => string): void => out(flags.json ? JSON.stringify(value) : text());
  switch (verb) {
    case 'list': {
      const proxies = (await call(base, 'GET', '/proxies')) as Record<string, ProxyJson>;
      const relays = (await call(base, 'GET', '/relays')) as Record<string, Record<string, unknown>>;
      print({ proxies, relays }, () => {
        const table = new Table({ head: ['name', 'kind', 'listen', 'upstream', 'enabled', 'toxics / impairments'], style: { head: [], border: [] }, chars: COMPACT });
        for (const p of Object.values(proxies)) table.push([p.name, 'tcp proxy', p.listen, p.upstream, String(p.enabled), p.toxics.map(describeToxic).join('\n') || '(none)']);
        for (const [name, r] of Object.entries(relays)) {
          const imp = (r.impairments ?? {}) as Record<string, unknown>;
          const streams = ['upstream', 'downstream'].map((s) => `${s}: ${JSON.stringify(imp[s] ?? {})}`).join('\n');
          table.push([name, 'udp relay', String(r.listen ?? ''), String(r.upstream ?? ''), '', streams]);
        }
        return table.length === 0 ? `no proxies or relays at ${base}` : table.toString();
      });
      return;
    }
    case 'inspect': {
      need(rest, 1, 'inspect <proxy>');
      const p = await call(base, 'GET', `/proxies/${enc(rest[0]!)}`);
      out(JSON.stringify(p, null, flags.json ? undefined : 2));
      return;
    }
    case 'toggle': {
      need(rest, 1, 'toggle <proxy>');
      const p = (await call(base, 'GET', `/proxies/${enc(rest[0]!)}`)) as ProxyJson;
      const after = (await call(base, 'POST', `/proxies/${enc(p.name)}`, { enabled: !p.enabled })) as ProxyJson;
      print(after, () => `proxy ${after.name} is now ${after.enabled ? 'enabled (listening)' : 'disabled (not listening, connections closed)'}`);
      return;
    }
    case 'add': {
      need(rest, 2, "add <proxy> <toxics> (--impair's syntax: latency=300ms,jitter@down=20ms)");
      const [proxy, ...specs] = rest as [string, ...string[]];
      const plans = parseImpairSpecs(specs.join(','));
      const toxics = plans.flatMap((p) => [...p.tcp.upstream, ...p.tcp.downstream]);
      if (toxics.length === 0) throw new Usage(`${specs.join(',')} names no TCP toxic (latency, jitter, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data)`);
      const added: ToxicJson[] = [];
      const existing = ((await call(base, 'GET', `/proxies/${enc(proxy)}`)) as ProxyJson).toxics.map((t) => t.name);
      const taken = toxics.filter((t) => existing.includes(t.name)).map((t) => t.name);
      if (taken.length > 0) throw new Usage(`${proxy} already has ${taken.join(', ')}: change it with wirelab impair update ${proxy} ${taken[0]} key=number, or remove it first`);
      for (const t of toxics) added.push((await call(base, 'POST', `/proxies/${enc(proxy)}/toxics`, t)) as ToxicJson);
      print(added, () => added.map((t) => `added to ${proxy}: ${describeToxic(t)}`).join('\n'));
      return;
    }
    case 'update': {
      need(rest, 3, 'update <proxy> <toxic> key=number ... (latency=100, toxicity=0.5)');
      const [proxy, toxic, ...pairs] = rest as [string, string, ...string[]];
      const t = (await call(base, 'POST', `/proxies/${enc(proxy)}/toxics/${enc(toxic)}`, updateBody(pairs))) as ToxicJson;
      print(t, () => `updated on ${proxy}: ${describeToxic(t)}`);
      return;
    }
    case 'remove': {
      need(rest, 2, 'remove <proxy> <toxic>');
      await call(base, 'DELETE', `/proxies/${enc(rest[0]!)}/toxics/${enc(rest[1]!)}`);
      print({ removed: rest[1] }, () => `removed ${rest[1]} from ${rest[0]}`);
      return;
    }
    case 'relay': {
      need(rest, 2, "relay <relay> <impairments> (--impair's syntax: loss=5%,delay@down=20ms)");
      const [relay, ...specs] = rest as [string, ...string[]];
      const plans = parseImpairSpecs(specs.join(','));
      let result: unknown;
      for (const stream of ['upstream', 'downstream'] as const) {
        const set = Object.assign({}, ...plans.map((p) => p.udp[stream])) as Record<string, unknown>;
        if (Object.keys(set).length > 0) result = await call(base, 'POST', `/relays/${enc(relay)}/impairments`, { stream, ...set });
      }
      if (result === undefined) throw new Usage(`${specs.join(',')} names no UDP impairment`);
      const imp = ((result as { impairments?: Record<string, unknown> }).impairments ?? {}) as Record<string, unknown>;
      print(result, () => `relay ${relay}: upstream ${JSON.stringify(imp.upstream ?? {})}; downstream ${JSON.stringify(imp.downstream ?? {})}`);
      return;
    }
    case 'reset': {
      await call(base, 'POST', '/reset');
      print({ reset: true }, () => 'every toxic removed, every relay cleared');
      return;
    }
    default:
      throw new Usage(`unknown action "${verb}"; actions: list, inspect, toggle, add, update, remove, relay, reset`);
  }
}

/** Exit 0 done, 1 the control API refused or did not answer, 2 usage. */
export async function impairCommand(args: string[], flags: ImpairFlags): Promise<number> {
  try {
    await runImpair(args, flags, (line) => console.log(line));
    return 0;
  } catch (err) {
    console.error(`wirelab impair: ${(err as Error).message}`);
    return exitCodeOf(err);
  }
}

/** 2 for a usage error (a bad --impair-style spec too), 1 for the control API refusing or not answering. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof Usage) return 2;
  if (err instanceof ApiError) return 1;
  return err instanceof WirelabError && err.code === ErrorCodes.IMPAIR_INVALID ? 2 : 1;
}
