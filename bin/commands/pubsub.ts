/**
 * `wirelab pub` and `wirelab sub`: the native client on the command line, in the manner of `nats pub/sub`,
 * `mosquitto_pub/sub` and `kcat`. Default URL: wirelab up's native TCP door (port base + 4222).
 */
import { connectPubsub, type PubsubClient, type PublishOptions, type ReceivedMessage, type SubscribeOptions } from '../../clients/pubsub.ts';
import { WirelabError } from '../../core/errors.ts';
import { DEFAULT_PORT_BASE } from '../../core/registry.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { PUBSUB_TCP_PORT, type From } from '../../protocols/pubsub.ts';
import { LineSplitter } from '../cli/lines.ts';
import { untilStopped } from '../stop.ts';

export interface PubsubFlags {
  url?: string;
  'port-base'?: string;
  user?: string;
  password?: string;
  token?: string;
  json?: boolean;
}
export interface PubFlags extends PubsubFlags {
  key?: string;
  acks?: string;
  'msg-id'?: string;
  header?: string[];
}
export interface SubFlags extends PubsubFlags {
  group?: string;
  mode?: string;
  ack?: string;
  from?: string;
  count?: string;
}

/** Longest stdin line `wirelab pub topic -` publishes (a longer one is reported and skipped). */
export const MAX_PUB_LINE_BYTES = 1024 * 1024;

class Usage extends Error {}

function urlOf(cmd: string, flags: PubsubFlags): string {
  if (flags.url !== undefined && flags['port-base'] !== undefined) throw new Usage('give --url or --port-base, not both');
  if (flags.url !== undefined) {
    if (!/^(wss?|tcp|tls):\/\/[^/]+/.test(flags.url)) throw new Usage(`--url must be ws://, wss://, tcp:// or tls://HOST:PORT, got ${flags.url}`);
    return flags.url;
  }
  const base = flags['port-base'] === undefined ? DEFAULT_PORT_BASE : Number(flags['port-base']);
  if (!Number.isInteger(base) || base < 1 || base + PUBSUB_TCP_PORT > 65535) throw new Usage(`--port-base must be an integer from 1 to ${65535 - PUBSUB_TCP_PORT}, got ${flags['port-base']}`);
  void cmd;
  return `tcp://127.0.0.1:${base + PUBSUB_TCP_PORT}`;
}

async function connect(flags: PubsubFlags, url: string, tracer: Tracer): Promise<PubsubClient> {
  return connectPubsub({
    url,
    tracer,
    ...(flags.token !== undefined ? { token: flags.token } : {}),
    ...(flags.user !== undefined ? { user: flags.user, password: flags.password ?? process.env.WIRELAB_PASSWORD ?? '' } : {}),
  });
}

function describeError(err: unknown): string {
  if (err instanceof WirelabError) return `${err.code}${'limit' in err && err.limit ? ` (${String(err.limit)})` : ''}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

function pubOptions(flags: PubFlags): PublishOptions {
  const o: PublishOptions = {};
  if (flags.key !== undefined) o.key = flags.key;
  if (flags['msg-id'] !== undefined) o.msgId = flags['msg-id'];
  if (flags.acks !== undefined) {
    if (!['0', '1', 'all'].includes(flags.acks)) throw new Usage(`--acks must be 0, 1 or all, got ${flags.acks}`);
    o.acks = flags.acks === 'all' ? 'all' : (Number(flags.acks) as 0 | 1);
  }
  for (const h of flags.header ?? []) {
    const eq = h.indexOf('=');
    if (eq <= 0) throw new Usage(`--header must be name=value, got ${h}`);
    (o.headers ??= {})[h.slice(0, eq)] = h.slice(eq + 1);
  }
  return o;
}

/** `wirelab pub <topic> [message|-]`: one message, or each stdin line (with `-` or no message). Exit 0 when every publish was acknowledged. */
export async function pubCommand(args: string[], flags: PubFlags, tracer: Tracer): Promise<number> {
  let url: string;
  let options: PublishOptions;
  try {
    url = urlOf('pub', flags);
    options = pubOptions(flags);
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    console.error(`wirelab pub: ${err.message}`);
    return 2;
  }
  const [topic, message] = args as [string, string | undefined];
  let client: PubsubClient;
  try {
    client = await connect(flags, url, tracer);
  } catch (err) {
    console.error(`wirelab pub: cannot connect to ${url}: ${describeError(err)}`);
    return 1;
  }
  let failed = 0;
  const publish = async (payload: string): Promise<void> => {
    try {
      const ack = await client.publish(topic, payload, options);
      if (flags.json) console.log(JSON.stringify(ack ?? { topic, acks: 0 }));
      else if (ack) console.log(`${ack.topic}[${ack.partition}]@${ack.offset}${ack.duplicate ? ' (duplicate: stored once before)' : ''}`);
    } catch (err) {
      failed++;
      console.error(`wirelab pub: ${describeError(err)}`);
    }
  };
  if (message !== undefined && message !== '-') {
    await publish(message);
  } else {
    const pending: Promise<void>[] = [];
    const lines = new LineSplitter(
      MAX_PUB_LINE_BYTES,
      (line) => pending.push(publish(line)),
      (bytes) => {
        failed++;
        console.error(`wirelab pub: a stdin line of ${bytes} bytes is over ${MAX_PUB_LINE_BYTES}: skipped`);
      },
    );
    for await (const chunk of process.stdin) lines.push(chunk as Buffer);
    lines.end();
    await Promise.all(pending);
  }
  await client.close();
  return failed > 0 ? 1 : 0;
}

function fromOf(v: string | undefined): From | undefined {
  if (v === undefined) return undefined;
  if (v === 'earliest' || v === 'new') return v;
  if (/^\d+$/.test(v)) return { offset: Number(v) };
  const t = Date.parse(v);
  if (/^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(t)) return { time: t };
  throw new Usage(`--from must be earliest, new, an offset or an ISO time (2026-01-31T12:00:00Z), got ${v}`);
}

function subOptions(flags: SubFlags): SubscribeOptions {
  const o: SubscribeOptions = {};
  if (flags.group !== undefined) o.group = flags.group;
  if (flags.mode !== undefined) {
    if (flags.mode !== 'queue' && flags.mode !== 'partitioned') throw new Usage(`--mode must be queue or partitioned, got ${flags.mode}`);
    if (flags.group === undefined) throw new Usage('--mode needs --group');
    o.mode = flags.mode;
  }
  if (flags.ack !== undefined) {
    if (flags.ack !== 'manual' && flags.ack !== 'none') throw new Usage(`--ack must be manual or none, got ${flags.ack}`);
    o.ack = flags.ack;
  }
  const from = fromOf(flags.from);
  if (from !== undefined) o.from = from;
  return o;
}

function line(m: ReceivedMessage, json: boolean): string {
  if (!json) return `${m.topic}[${m.partition}]@${m.offset}${m.key ? ` key=${m.key}` : ''}${m.attempt > 1 ? ` attempt ${m.attempt}` : ''}: ${m.text}`;
  return JSON.stringify({
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    ts: m.ts,
    ...(m.key !== undefined ? { key: m.key } : {}),
    headers: m.headers,
    ...(m.msgId !== undefined ? { msgId: m.msgId } : {}),
    attempt: m.attempt,
    payload: m.text,
  });
}

/** `wirelab sub <pattern>`: prints each message (acked after it is printed, with --ack manual) until --count or Ctrl-C. */
export async function subCommand(args: string[], flags: SubFlags, tracer: Tracer): Promise<number> {
  let url: string;
  let options: SubscribeOptions;
  let count = Infinity;
  try {
    url = urlOf('sub', flags);
    options = subOptions(flags);
    if (flags.count !== undefined) {
      count = Number(flags.count);
      if (!Number.isInteger(count) || count < 1) throw new Usage(`--count must be a positive integer, got ${flags.count}`);
    }
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    console.error(`wirelab sub: ${err.message}`);
    return 2;
  }
  let client: PubsubClient;
  try {
    client = await connect(flags, url, tracer);
  } catch (err) {
    console.error(`wirelab sub: cannot connect to ${url}: ${describeError(err)}`);
    return 1;
  }
  let seen = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  try {
    await client.subscribe(args[0]!, {
      ...options,
      onMessage: (m) => {
        if (seen >= count) return;
        seen++;
        process.stdout.write(`${line(m, Boolean(flags.json))}\n`, () => m.ack());
        if (seen >= count) done();
      },
    });
  } catch (err) {
    console.error(`wirelab sub: ${describeError(err)}`);
    await client.close();
    return 1;
  }
  if (!flags.json) console.error(`wirelab sub: subscribed to ${args[0]} on ${url}${options.group ? ` (group ${options.group})` : ''}; Ctrl-C stops`);
  const lost = client.closed.then(({ reason }) => reason);
  const outcome = await Promise.race([finished.then(() => 'count' as const), untilStopped().then(() => 'stopped' as const), lost]);
  if (outcome !== 'count' && outcome !== 'stopped') {
    console.error(`wirelab sub: connection closed: ${outcome}`);
    return 1;
  }
  // Let the last acks go out before closing.
  await new Promise((r) => process.stdout.write('', r));
  await client.ping().catch(() => 0);
  await client.close();
  return 0;
}
