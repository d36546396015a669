import { MemorySink, createTracer } from '../../../core/trace/index.ts';
import { createBroker, type BrokerOptions } from '../../../pubsub/broker/index.ts';
import type { Broker, ConnectInfo, Deliver, Message, Session } from '../../../pubsub/broker/types.ts';

export const LOCAL: ConnectInfo = { door: 'internal', peer: '127.0.0.1:0', tls: false };

/** A broker on an in-memory embedded engine, with a memory trace; closed by t.after. */
export async function makeBroker(t: { after(fn: () => Promise<void>): void }, options: BrokerOptions = {}): Promise<{ broker: Broker; sink: MemorySink }> {
  const sink = new MemorySink();
  const broker = await createBroker({ tracer: createTracer([sink]), ...options });
  t.after(() => broker.close());
  return { broker, sink };
}

/** Polls `f` until it holds (the count-based waits of the common brief: no fixed sleeps). */
export async function until(f: () => boolean | Promise<boolean>, what = 'condition', maxMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await f())) {
    if (Date.now() - start > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A subscriber that records what it gets; `more` decides what deliver returns. */
export function collector(more: () => boolean = () => true): { got: Message[]; deliver: Deliver } {
  const got: Message[] = [];
  return { got, deliver: (m) => (got.push(m), more()) };
}

export async function publishMany(session: Session, topic: string, n: number, acks: 0 | 1 | 'all' = 1): Promise<void> {
  for (let i = 0; i < n; i++) await session.publish({ topic, payload: Buffer.from(`m${i}`), acks });
}
