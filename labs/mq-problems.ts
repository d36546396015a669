import { defineLab } from '../core/lab/index.ts';
import { duplicates } from './mq/duplicates.ts';
import { dead } from './mq/dead.ts';
import { loss } from './mq/loss.ts';
import { ordering } from './mq/ordering.ts';
import { overflow } from './mq/overflow.ts';
import { security } from './mq/security.ts';
import { slow } from './mq/slow.ts';
import { Env, type Row } from './mq/harness.ts';

export default defineLab({
  id: 'mq-problems',
  title: 'The seven message-queue problems, each injected, then its three remedies',
  concept: 'Queues fail in seven ways (duplicates, loss, slow and dead consumers, ordering, overflow, forged or flooding producers); each remedy fixes one of them, observed on the broker.',
  protocols: ['pubsub'],
  timeoutMs: 60_000,
  async run(ctx) {
    const env = new Env(ctx);
    const rows: Row[] = [];
    rows.push(...(await duplicates(env)));
    rows.push(...(await loss(env)));
    rows.push(...(await slow(env)));
    rows.push(...(await ordering(env)));
    rows.push(...(await dead(env)));
    rows.push(...(await overflow(env)));
    ctx.table(
      'scoreboard (effects = side effects the consumers performed)',
      ['problem', 'variant', 'sent', 'processed', 'lost', 'duplicated', 'out of order', 'late'],
      rows.map((r) => [r.problem, r.variant, r.score.sent, r.score.processed, r.score.lost, r.score.duplicated, r.score.outOfOrder, r.score.late]),
    );
    await security(env);
  },
});
