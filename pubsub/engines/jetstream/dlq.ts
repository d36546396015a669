/**
 * Dead letters on JetStream: `maxDeliver` is the consumer's max_deliver; the server's MAX_DELIVERIES advisory is turned
 * into a copy of the record on the dead-letter topic (a queue subscription: with several wirelab processes on one
 * cluster each advisory is handled once; the copy's msg id `dlq:<stream>:<seq>` makes a repeat a duplicate). Also
 * watches stream creation / deletion so pattern consumers pick up topics other processes create.
 */
import { decodeRecord, parseMeta, streamName } from './codec.ts';
import { parseConsumerDescription } from './consumer.ts';
import type { JetStreamEngineImpl } from './engine.ts';

export interface DeadLetterInput {
  stream: string;
  seq: number;
  topic: string;
  partition: number;
  deliveries: number;
  reason: string;
  deadLetterTopic: string;
  group?: string;
}

/** Topics other processes create (pattern consumers attach), deleted ones, MAX_DELIVERIES advisories (handled once per cluster). */
export async function watchCluster(engine: JetStreamEngineImpl): Promise<void> {
  const created = engine.nc.subscribe('$JS.EVENT.ADVISORY.STREAM.CREATED.*', {
    callback: (err, msg) => {
      if (err) return;
      const name = msg.subject.split('.').pop()!;
      if (!name.startsWith(engine.options.streamPrefix + '-')) return;
      engine.jsm.streams.info(name).then(
        (info) => engine.onStream(info),
        (e: unknown) => engine.traceError('engine', `stream ${name}`, e),
      );
    },
  });
  const deleted = engine.nc.subscribe('$JS.EVENT.ADVISORY.STREAM.DELETED.*', {
    callback: (err, msg) => {
      if (err) return;
      const name = msg.subject.split('.').pop()!;
      if (name.startsWith(engine.options.streamPrefix + '-')) engine.deletedStreams.add(name);
      for (const [topic, p] of engine.topicCache) {
        p.then(
          (m) => {
            if (name === streamName(engine.options.streamPrefix, topic, m.partition)) engine.topicCache.delete(topic);
          },
          () => undefined,
        );
      }
    },
  });
  // A queue subscription: with several wirelab processes on one cluster, each advisory is handled once.
  const maxDeliveries = engine.nc.subscribe('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>', {
    queue: `${engine.options.streamPrefix}-dlq`,
    callback: (err, msg) => {
      if (err) return;
      let a: { stream: string; consumer: string; stream_seq: number; deliveries: number };
      try {
        a = msg.json();
      } catch {
        return;
      }
      if (!a.stream?.startsWith(engine.options.streamPrefix + '-')) return;
      void settleDeadLettered(engine, a.stream, a.stream_seq)
        .then(() => onMaxDeliveries(engine, a))
        .catch((e: unknown) => engine.traceError('engine', 'max-deliveries advisory', e));
    },
  });
  // Every process: its own member still holding the last delivery acks it (the ack floor moves past it).
  const settle = engine.nc.subscribe('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>', {
    callback: (err, msg) => {
      if (err) return;
      try {
        const a = msg.json<{ stream: string; stream_seq: number }>();
        void settleDeadLettered(engine, a.stream, a.stream_seq);
      } catch {
        // not an advisory
      }
    },
  });
  // Partitioned groups: another process's member joined or left (membership.ts).
  const announced = engine.nc.subscribe(engine.announceSubject, {
    callback: (err, msg) => {
      if (!err) engine.onAnnounce(msg.string());
    },
  });
  void Promise.all([created.closed, deleted.closed, maxDeliveries.closed, settle.closed, announced.closed]).catch(() => undefined);
  await engine.nc.flush();
}

async function settleDeadLettered(engine: JetStreamEngineImpl, stream: string, seq: number): Promise<void> {
  await Promise.all([...engine.consumers].map((c) => c.settleDeadLettered(stream, seq)));
}

async function onMaxDeliveries(engine: JetStreamEngineImpl, a: { stream: string; consumer: string; stream_seq: number; deliveries: number }): Promise<void> {
  const info = await engine.jsm.streams.info(a.stream);
  const meta = parseMeta(info.config.description);
  if (!meta) return;
  const ci = await engine.jsm.consumers.info(a.stream, a.consumer).catch(() => undefined);
  const desc = parseConsumerDescription(ci?.config.description);
  await deadLetter(engine, {
    stream: a.stream,
    seq: a.stream_seq,
    topic: meta.topic,
    partition: meta.partition,
    deliveries: a.deliveries,
    reason: 'maxDeliver',
    deadLetterTopic: desc?.deadLetterTopic ?? `$dlq.${meta.topic}`,
    ...(desc?.group ? { group: desc.group } : {}),
  });
}

/** Copies a record to the dead-letter topic with the `wl-dlq-*` headers (deduplicated: safe to repeat). */
export async function deadLetter(engine: JetStreamEngineImpl, d: DeadLetterInput, then?: () => void): Promise<void> {
  const stored = await engine.jsm.streams.getMessage(d.stream, { seq: d.seq });
  const record = decodeRecord(stored.seq, stored.time.getTime(), stored.data, stored.header);
  await engine.append({
    topic: d.deadLetterTopic,
    payload: record.payload,
    ...(record.key !== undefined ? { key: record.key } : {}),
    headers: {
      ...record.headers,
      'wl-dlq-reason': d.reason,
      'wl-dlq-topic': d.topic,
      'wl-dlq-partition': String(d.partition),
      'wl-dlq-offset': String(record.offset),
      'wl-dlq-deliveries': String(d.deliveries),
    },
    msgId: `dlq:${d.stream}:${d.seq}`,
    acks: 'all',
  });
  then?.();
  engine.counters.deadLettered++;
  if (d.group) engine.deadLettered.set(d.group, (engine.deadLettered.get(d.group) ?? 0) + 1);
  engine.emitLineage({ step: 'dead-lettered', topic: d.topic, partition: d.partition, offset: record.offset, reason: d.reason, deadLetterTopic: d.deadLetterTopic, t: Date.now() });
}
