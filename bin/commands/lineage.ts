/**
 * `wirelab lineage <topic> <id>`: one message's timeline (published -> persisted -> delivered -> acked / redelivered /
 * nak'd / expired / dead-lettered) from a running broker, read from its HTTP door's admin API
 * (`GET /admin/lineage/:topic/:partition/:offset`). <id> is an offset (partition 0), `<partition>@<offset>` (what
 * `wirelab pub` prints, `orders.eu[0]@12` or `0@12`), `<partition>-<offset>`, or a producer msgId (found by reading the
 * topic from its start through long polling, at most MAX_SCAN_RECORDS records).
 */
import { DEFAULT_PORT_BASE } from '../../core/registry.ts';
import { PUBSUB_HTTP_PORT } from '../../pubsub/doors/http/service.ts';
import type { LineageEntry } from '../../pubsub/broker/types.ts';
import type { PubsubFlags } from './pubsub.ts';

/** The connection flags of wirelab pub / sub; --url here is the HTTP door. */
export type LineageFlags = PubsubFlags;

/** Most records read while looking for a msgId before giving up. */
export const MAX_SCAN_RECORDS = 100_000;
/** Longest wait for one HTTP answer. */
export const REQUEST_TIMEOUT_MS = 10_000;

class Usage extends Error {}
class NotFound extends Error {}

function baseUrl(flags: LineageFlags): string {
  if (flags.url !== undefined && flags['port-base'] !== undefined) throw new Usage('give --url or --port-base, not both');
  if (flags.url !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(flags.url)) throw new Usage(`--url must be the HTTP door, http(s)://HOST:PORT, got ${flags.url}`);
    return flags.url.replace(/\/+$/, '');
  }
  const base = flags['port-base'] === undefined ? DEFAULT_PORT_BASE : Number(flags['port-base']);
  if (!Number.isInteger(base) || base < 1 || base + PUBSUB_HTTP_PORT > 65535) throw new Usage(`--port-base must be an integer from 1 to ${65535 - PUBSUB_HTTP_PORT}, got ${flags['port-base']}`);
  return `http://127.0.0.1:${base + PUBSUB_HTTP_PORT}`;
}

function authHeader(flags: LineageFlags): Record<string, string> {
  if (flags.token !== undefined) return { authorization: `Bearer ${flags.token}` };
  if (flags.user !== undefined) {
    const password = flags.password ?? process.env.WIRELAB_PASSWORD ?? '';
    return { authorization: `Basic ${Buffer.from(`${flags.user}:${password}`).toString('base64')}` };
  }
  return {};
}

/** The id as a partition and offset, or undefined when it is a msgId. Accepts `12`, `0@12`, `[0]@12`, `topic[0]@12`, `0-12`. */
export function parseMessageId(id: string): { partition: number; offset: number } | undefined {
  const m = /^(?:[^[\]]*\[(\d{1,9})\]@|(\d{1,9})[@-])?(\d{1,15})$/.exec(id);
  if (!m) return undefined;
  return { partition: Number(m[1] ?? m[2] ?? 0), offset: Number(m[3]) };
}

async function getJson(url: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    throw new Error(`no answer from ${new URL(url).origin} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); is wirelab up running, or is --url the HTTP door?`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text for the error message
  }
  return { status: res.status, body };
}

function refusal(status: number, body: unknown): Error {
  const b = body as { code?: string; detail?: string } | undefined;
  const what = b && typeof b === 'object' && b.code ? `${b.code}: ${b.detail ?? ''}` : `HTTP ${status}`;
  return status === 404 ? new NotFound(what) : new Error(what);
}

/** Reads the topic from its first record (long polling, timeoutMs=0) until a record carries `msgId`. */
async function findByMsgId(base: string, topic: string, msgId: string, headers: Record<string, string>): Promise<{ partition: number; offset: number }> {
  let after: string | undefined;
  let scanned = 0;
  while (scanned < MAX_SCAN_RECORDS) {
    const q = after === undefined ? 'from=earliest' : `after=${encodeURIComponent(after)}`;
    const r = await getJson(`${base}/topics/${encodeURIComponent(topic)}/poll?${q}&timeoutMs=0&max=1000`, headers);
    if (r.status === 204) break;
    if (r.status !== 200) throw refusal(r.status, r.body);
    const { messages, cursor } = r.body as { messages: Array<{ partition: number; offset: number; msgId?: string }>; cursor: string };
    const hit = messages.find((m) => m.msgId === msgId);
    if (hit) return { partition: hit.partition, offset: hit.offset };
    if (messages.length === 0) break;
    scanned += messages.length;
    after = cursor;
  }
  throw new NotFound(`no message with msgId ${msgId} in ${topic} (read ${scanned} records${scanned >= MAX_SCAN_RECORDS ? `, the most it reads (${MAX_SCAN_RECORDS})` : ''})`);
}

/** One line per step: time since the first step, the step's name (a delivery after the first is "redelivered"), details. */
export function formatTimeline(topic: string, partition: number, offset: number, steps: LineageEntry[]): string {
  const t0 = steps[0]?.t ?? 0;
  const lines = [`${topic}[${partition}]@${offset}: ${steps.length} steps from ${new Date(t0).toISOString()}`];
  for (const s of steps) {
    const who = 'session' in s && s.session !== undefined ? `${s.user ?? 'anonymous'} (${s.session})` : undefined;
    let name: string = s.step;
    let detail = '';
    switch (s.step) {
      case 'published':
        detail = `by ${who} through ${s.door}${s.msgId !== undefined ? `, msgId ${s.msgId}` : ''}${s.signer !== undefined ? `, signed by ${s.signer}` : ''}`;
        break;
      case 'persisted':
        detail = s.durability;
        break;
      case 'delivered':
        if (s.attempt > 1) name = 'redelivered';
        detail = `to ${who ?? s.consumer}${s.group !== undefined ? ` in group ${s.group}` : ''}, attempt ${s.attempt}`;
        break;
      case 'dead-lettered':
        detail = `to ${s.deadLetterTopic}: ${s.reason}`;
        break;
      default:
        detail = `${who ?? s.consumer}${s.group !== undefined ? ` in group ${s.group}` : ''}`;
    }
    lines.push(`  +${String(s.t - t0).padStart(6)} ms  ${name.padEnd(13)} ${detail}`);
  }
  return lines.join('\n');
}

export async function lineageCommand(args: string[], flags: LineageFlags): Promise<number> {
  const [topic, id] = args as [string, string];
  try {
    const base = baseUrl(flags);
    const headers = authHeader(flags);
    const where = parseMessageId(id) ?? (await findByMsgId(base, topic, id, headers));
    const r = await getJson(`${base}/admin/lineage/${encodeURIComponent(topic)}/${where.partition}/${where.offset}`, headers);
    if (r.status !== 200) throw refusal(r.status, r.body);
    const { steps } = r.body as { steps: LineageEntry[] };
    if (flags.json) console.log(JSON.stringify({ topic, partition: where.partition, offset: where.offset, steps }));
    else console.log(formatTimeline(topic, where.partition, where.offset, steps));
    return 0;
  } catch (err) {
    if (err instanceof Usage) {
      console.error(`wirelab lineage: ${err.message} (wirelab lineage --help)`);
      return 2;
    }
    console.error(`wirelab lineage: ${(err as Error).message}`);
    return 1;
  }
}
