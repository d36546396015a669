import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { json, readBody, type Ctx, type Router } from '../../../servers/http/index.ts';
import type { Session } from '../../broker/types.ts';
import { checkTopic } from '../../subjects.ts';
import { envelope } from './cursor.ts';
import { guarded, type Door } from './door.ts';
import { invalid } from './errors.ts';

/** The dead-letter topic for `:topic`: itself when it is one (`$dlq.orders`), else `$dlq.<topic>` (the default). */
export function deadLetterTopic(topic: string): string {
  return topic.startsWith('$dlq.') ? topic : `$dlq.${topic}`;
}

/** Runs `fn` for an admin: a session of one of `adminUsers` ('*': any session the broker accepts). */
async function asAdmin<T>(door: Door, ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  const allowed = door.options.adminUsers;
  return door.sessions.use(ctx, (s: Session) => {
    if (!allowed.includes('*') && (s.user === undefined || !allowed.includes(s.user))) {
      throw new PubsubError(ErrorCodes.PUBSUB_ACL, `${s.user === undefined ? 'an anonymous session' : `user ${s.user}`} is not an admin (adminUsers)`);
    }
    return fn();
  });
}

/**
 * The REST admin: topics (partitions, offsets, sizes), consumer groups with lag per partition, dead letters and their
 * redrive, the broker's and the door's counters.
 */
export function registerAdmin(router: Router, door: Door): void {
  const b = door.broker;
  router.add(
    'GET',
    '/admin/topics',
    guarded(door, async (_d, ctx) => json(ctx, 200, { topics: await asAdmin(door, ctx, () => b.topics()) })),
  );
  router.add(
    'GET',
    '/admin/topics/:topic',
    guarded(door, async (_d, ctx) => {
      const name = checkTopic(ctx.params[0] ?? '');
      const t = await asAdmin(door, ctx, () => b.engine.topic(name));
      if (!t) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no topic ${name}`);
      json(ctx, 200, t);
    }),
  );
  router.add(
    'GET',
    '/admin/groups',
    guarded(door, async (_d, ctx) => json(ctx, 200, { groups: await asAdmin(door, ctx, () => b.groups()) })),
  );
  router.add(
    'GET',
    '/admin/dlq/:topic',
    guarded(door, async (_d, ctx) => {
      const dlq = deadLetterTopic(checkTopic(ctx.params[0] ?? ''));
      const raw = ctx.url.searchParams.get('max') ?? '100';
      const max = Number(raw);
      if (!/^\d{1,6}$/.test(raw) || max < 1 || max > 10_000) throw invalid('max must be an integer in [1, 10000]');
      const records = await asAdmin(door, ctx, () => b.deadLetters(dlq, max));
      json(ctx, 200, {
        topic: dlq,
        messages: records.map((r) =>
          envelope({ subscription: 'dlq', topic: dlq, partition: 0, offset: r.offset, timestamp: r.timestamp, headers: r.headers, payload: r.payload, attempt: 1, ...(r.key !== undefined ? { key: r.key } : {}), ...(r.msgId !== undefined ? { msgId: r.msgId } : {}) }),
        ),
      });
    }),
  );
  router.add(
    'POST',
    '/admin/dlq/:topic/redrive',
    guarded(door, async (_d, ctx) => {
      const dlq = deadLetterTopic(checkTopic(ctx.params[0] ?? ''));
      const body = await readBody(ctx);
      let offsets: number[] | undefined;
      if (body.length) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          throw invalid('the body must be empty (redrive all) or JSON {"offsets": [n, ...]}');
        }
        const o = (parsed as { offsets?: unknown } | null)?.offsets;
        if (o !== undefined && (!Array.isArray(o) || o.length > 100_000 || o.some((n) => !Number.isInteger(n) || n < 0))) throw invalid('offsets must be an array of offsets');
        offsets = o as number[] | undefined;
      }
      const redriven = await asAdmin(door, ctx, () => b.redrive(dlq, offsets));
      door.tracer.emit('pubsub-http', ctx.cid, '>', 'redrive', () => `redrove ${redriven} from ${dlq}`);
      json(ctx, 200, { topic: dlq, redriven });
    }),
  );
  router.add(
    'GET',
    '/admin/lineage/:topic/:partition/:offset',
    guarded(door, async (_d, ctx) => {
      const topic = checkTopic(ctx.params[0] ?? '');
      const [partition, offset] = [ctx.params[1] ?? '', ctx.params[2] ?? ''].map((v) => (/^\d{1,15}$/.test(v) ? Number(v) : NaN));
      if (!Number.isInteger(partition) || !Number.isInteger(offset)) throw invalid('partition and offset must be integers');
      const steps = await asAdmin(door, ctx, async () => b.lineage(topic, partition!, offset!));
      if (!steps) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no lineage kept for ${topic} ${partition}-${offset}`);
      json(ctx, 200, { topic, partition, offset, steps });
    }),
  );
  router.add(
    'GET',
    '/admin/stats',
    guarded(door, async (_d, ctx) => json(ctx, 200, { broker: await asAdmin(door, ctx, async () => b.stats()), door: { ...door.stats, sessions: door.sessions.size, pendingAcks: door.pending.size } })),
  );
}
