import { defineLab } from '../core/lab/index.ts';
import { createSmtpClient, sendWithRetry } from '../clients/smtp.ts';
import { openMailStore } from '../servers/mail/store/index.ts';
import { startSmtpServer } from '../servers/smtp/index.ts';

/** A small seeded generator (mulberry32), so the random part of the lab is the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export default defineLab({
  id: 'smtp-chaos',
  title: 'SMTP under injected failures: retry after 4xx, bounce on 5xx',
  concept: 'SMTP reply codes carry the retry policy: 4xx means "try again later" (the message stays queued), 5xx means "never" (it bounces).',
  protocols: ['smtp'],
  timeoutMs: 60_000,
  async run(ctx) {
    const store = await openMailStore({ memory: true });
    const smtp = await ctx.start(startSmtpServer({ store, tracer: ctx.tracer, random: seeded(42) }));
    const client = await createSmtpClient({ port: smtp.port, tracer: ctx.tracer });
    ctx.defer(() => client.close());
    const mail = (subject: string) => ({ from: 'ann@localhost', to: 'demo@localhost', subject, text: 'chaos test' });
    const inbox = (): number => store.mailbox('demo', 'INBOX')!.messages.length;
    const rows: Array<Array<string | number>> = [];
    const show = (label: string, r: Awaited<ReturnType<typeof sendWithRetry>>): void => {
      rows.push([label, r.attempts.map((a) => a.code || 'no reply').join(' → '), r.delivered ? 'delivered' : r.bounced ? 'bounced' : 'gave up']);
    };

    smtp.setChaos({ recipient: { code: 451, probability: 1, times: 2 } });
    const transient = await sendWithRetry(client, mail('after two 451s'));
    show('RCPT answered 451 twice', transient);
    ctx.claim(
      'after a 4xx the sender keeps the message and retries: two 451s, then delivered',
      transient.delivered && transient.attempts.map((a) => a.code).join(',') === '451,451,250' && inbox() === 1,
      transient.attempts.map((a) => a.code).join(' → '),
    );

    smtp.setChaos({ data: { code: 554, probability: 1 } });
    const permanent = await sendWithRetry(client, mail('rejected for good'));
    show('DATA answered 554', permanent);
    ctx.claim(
      'after a 5xx the sender gives up at once (bounce): one attempt, nothing stored',
      permanent.bounced && permanent.attempts.length === 1 && permanent.attempts[0]!.code === 554 && inbox() === 1,
      `${permanent.attempts.length} attempt, ${permanent.attempts[0]?.code}`,
    );

    smtp.setChaos({ disconnect: { probability: 1, times: 1 } });
    const dropped = await sendWithRetry(client, mail('after a dropped connection'));
    show('421 and disconnect', dropped);
    ctx.claim('a 421 with a dropped connection is transient too: retried and delivered', dropped.delivered && dropped.attempts[0]!.code === 421 && inbox() === 2, dropped.attempts.map((a) => a.code).join(' → '));

    smtp.setChaos({ disconnect: { probability: 1, times: 1, abrupt: true } });
    const cut = await sendWithRetry(client, mail('after a connection cut without a reply'));
    show('connection cut, no reply', cut);
    ctx.claim(
      'a connection cut with no reply at all is treated as transient: retried and delivered',
      cut.delivered && cut.attempts.length === 2 && cut.attempts[0]!.code === 0 && inbox() === 3,
      `${cut.attempts[0]?.message.slice(0, 60)} → ${cut.attempts.at(-1)?.code}`,
    );

    // Half the MAIL FROMs fail with 450 (seeded, so the same every run): every message still arrives, some later.
    smtp.setChaos({ sender: { code: 450, probability: 0.5 } });
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await sendWithRetry(client, mail(`flaky ${i}`), { maxAttempts: 10, backoffMs: 5 }));
    const retries = results.reduce((n, r) => n + r.attempts.length - 1, 0);
    rows.push(['MAIL FROM 450 with p=0.5, 10 messages', `${retries} retries in all`, `${results.filter((r) => r.delivered).length} delivered`]);
    ctx.claim('with half the attempts failing 450, all 10 messages are delivered thanks to retries', results.every((r) => r.delivered) && inbox() === 13 && retries > 0, `${retries} retries for 10 messages`);
    smtp.setChaos({});

    ctx.table('What the sender did', ['injected', 'reply codes seen', 'outcome'], rows);
    ctx.measure('server-side rejections injected', smtp.stats.rejected, 'replies');
    ctx.note('A real MTA retries over hours with growing back-off and then sends a bounce (DSN) to the sender; here back-off starts at 5–20 ms so the lab stays short.');
  },
});
