import { headerValue, json, readBody, type Ctx } from '../../../servers/http/index.ts';
import type { Acks, Headers } from '../../engines/types.ts';
import type { PublishInput } from '../../broker/types.ts';
import { checkTopic } from '../../subjects.ts';
import { invalid } from './errors.ts';
import type { Door } from './door.ts';

/** Request headers that become message headers: `X-Header-<name>: value` -> `<name>` (lower case). */
export const MESSAGE_HEADER_PREFIX = 'x-header-';

/** A header, else the query parameter of the same meaning. */
function param(ctx: Ctx, header: string | string[], query: string): string | undefined {
  for (const h of Array.isArray(header) ? header : [header]) {
    const v = headerValue(ctx.req, h);
    if (v !== undefined && v !== '') return v;
  }
  return ctx.url.searchParams.get(query) ?? undefined;
}

function intParam(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d{1,15}$/.test(raw.trim()) || n < min) throw invalid(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw.slice(0, 40))}`);
  return n;
}

export function parseAcks(raw: string | undefined): Acks | undefined {
  if (raw === undefined) return undefined;
  if (raw === '0') return 0;
  if (raw === '1') return 1;
  if (raw === 'all' || raw === '-1') return 'all';
  throw invalid(`acks must be 0, 1 or all, got ${JSON.stringify(raw.slice(0, 40))}`);
}

/** What a POST /topics/:topic asks for: the body, and headers or query parameters (a header wins). */
export function publishInput(ctx: Ctx, body: Buffer): PublishInput {
  const topic = checkTopic(ctx.params[0] ?? '');
  const input: PublishInput = { topic, payload: body };
  const headers: Headers = {};
  const contentType = headerValue(ctx.req, 'content-type');
  if (contentType !== undefined) headers['content-type'] = contentType;
  for (const [name, value] of Object.entries(ctx.req.headers)) {
    if (name.startsWith(MESSAGE_HEADER_PREFIX) && name.length > MESSAGE_HEADER_PREFIX.length && value !== undefined) {
      headers[name.slice(MESSAGE_HEADER_PREFIX.length)] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  if (Object.keys(headers).length) input.headers = headers;
  const key = param(ctx, 'x-key', 'key');
  if (key !== undefined) input.key = key;
  const msgId = param(ctx, ['x-msg-id', 'idempotency-key'], 'msgId');
  if (msgId !== undefined) input.msgId = msgId;
  const acks = parseAcks(param(ctx, 'x-acks', 'acks'));
  if (acks !== undefined) input.acks = acks;
  const ttlMs = intParam('X-TTL-Ms', param(ctx, 'x-ttl-ms', 'ttlMs'), 1);
  if (ttlMs !== undefined) input.ttlMs = ttlMs;
  const partition = intParam('X-Partition', param(ctx, 'x-partition', 'partition'), 0);
  if (partition !== undefined) input.partition = partition;
  return input;
}

/**
 * POST /topics/:topic: the body is the payload; the reply is the producer's ack. 201 stored (acks 1 / all), 200 a
 * duplicate msgId (stored once, the first copy's offset), 202 accepted without a wait (acks 0).
 */
export async function publish(door: Door, ctx: Ctx): Promise<void> {
  checkTopic(ctx.params[0] ?? '');
  const body = await readBody(ctx);
  const input = publishInput(ctx, body);
  door.tracer.emit('pubsub-http', ctx.cid, '>', 'publish', () => ({
    summary: `publish ${input.topic} ${body.length} B${input.acks !== undefined ? ` acks=${input.acks}` : ''}${input.msgId ? ` msgId=${input.msgId}` : ''}`,
    meta: { topic: input.topic, bytes: body.length, acks: input.acks, key: input.key, msgId: input.msgId, partition: input.partition },
  }));
  const result = await door.sessions.use(ctx, (s) => s.publish(input));
  door.stats.published++;
  const status = input.acks === 0 ? 202 : result.duplicate ? 200 : 201;
  json(ctx, status, { topic: result.topic, partition: result.partition, offset: result.offset, timestamp: result.timestamp, duplicate: result.duplicate });
}
