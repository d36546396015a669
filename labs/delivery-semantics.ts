import { connect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connectPubsub } from '../clients/pubsub.ts';
import { startTcpProxy } from '../core/impair/index.ts';
import { defineLab } from '../core/lab/index.ts';
import { WirelabError } from '../core/errors.ts';
import { createIdempotentHandler, type Message } from '../pubsub/broker/index.ts';
import { startPubsubTcpServer } from '../pubsub/doors/native/index.ts';
import { startMqttServer } from '../pubsub/doors/mqtt/index.ts';
import { ack, decode, Env, member, numbered, publishAll, Tally, until, type Numbered, type Score } from './mq/harness.ts';

const N = 40;
/** The link carries this many bytes client -> broker, then the connection is cut (once). */
const CUT_AFTER_BYTES = 1500;
const CRASH_AFTER = 3;
const QOS_MESSAGES = 10;

type Mode = 'at-most-once' | 'at-least-once' | 'effectively-once';
const MODES: Mode[] = ['at-most-once', 'at-least-once', 'effectively-once'];

/**
 * A producer publishing N numbered messages through the impairment proxy, whose link is cut once after
 * CUT_AFTER_BYTES. at-most-once: acks 0, no retry. at-least-once: acks 1, a publish whose ack did not come is sent
 * again. effectively-once: the same retries, each message with its msgId. Counted from what the broker stored.
 */
async function lossyProducer(env: Env, mode: Mode): Promise<{ score: Score; retried: number; cuts: number }> {
  const { ctx } = env;
  const b = await env.broker();
  const door = await ctx.start(startPubsubTcpServer({ broker: b, tracer: ctx.tracer }));
  const proxy = await ctx.start(startTcpProxy({ upstreamPort: door.port, seed: 7, tracer: ctx.tracer, wireMask: door.wireMask!, toxics: [{ name: 'cut', type: 'limit_data', stream: 'upstream', attributes: { bytes: CUT_AFTER_BYTES } }] }));
  const client = await connectPubsub({ url: `tcp://127.0.0.1:${proxy.port}`, reconnect: { retries: 10, baseMs: 20, maxMs: 200 }, tracer: ctx.tracer });
  ctx.defer(() => client.close());
  let cuts = 0;
  const topic = `ds.${mode}`;
  let retried = 0;
  const msgs = numbered(N);
  await Promise.all(
    msgs.map(async (n) => {
      for (;;) {
        try {
          await client.publish(topic, JSON.stringify(n), { acks: mode === 'at-most-once' ? 0 : 1, ...(mode === 'effectively-once' ? { msgId: n.id } : {}) });
          return;
        } catch (err) {
          if (!(err instanceof WirelabError) || mode === 'at-most-once') return;
          if (proxy.toxicsFor('upstream').length > 0) {
            proxy.removeToxic('cut');
            cuts++;
          }
          retried++;
        }
      }
    }),
  );
  if (proxy.toxicsFor('upstream').length > 0) {
    // acks 0: nothing comes back to say the link was cut (a publish resolves once handed to the socket); the proxy's
    // count does, once the bytes have reached it.
    await until(() => (proxy.stats.toxics.cut ?? 0) > 0, 1000);
    cuts = proxy.stats.toxics.cut ?? 0;
    proxy.removeToxic('cut');
  }
  await new Promise((r) => setTimeout(r, 50));
  const records = await b.engine.read(topic, 0, 0, 10 * N);
  const tally = new Tally();
  tally.sent = N;
  for (const r of records) tally.effect(JSON.parse(r.payload.toString()) as Numbered);
  return { score: tally.score(), retried, cuts };
}

/** A consumer that performs its effect and crashes before acking (at-least-once), or crashes holding messages (at-most-once). */
async function crashingConsumer(env: Env, mode: Mode): Promise<Score> {
  const b = await env.broker();
  const tally = new Tally();
  const topic = `dc.${mode}`;
  const group = { name: 'g', mode: 'queue' as const };
  const ackMode = mode === 'at-most-once' ? 'none' : 'manual';
  const store = new Map<string, number>();
  const idem = createIdempotentHandler((m: Message) => tally.effect(decode(m)), { store });
  const effect = async (m: Message): Promise<void> => {
    if (mode === 'effectively-once') await idem(m);
    else tally.effect(decode(m));
  };
  let done = 0;
  const a = await member(env, b, 'A', { pattern: topic, group, ack: ackMode, start: { kind: 'earliest' }, ...(ackMode === 'manual' ? { maxAckPending: CRASH_AFTER } : {}) }, async (m) => {
    if (done >= CRASH_AFTER) return;
    done++;
    await effect(m);
  });
  const p = await env.session(b, 'producer');
  tally.sent = await publishAll(p, topic, numbered(N));
  await until(() => done >= CRASH_AFTER && (ackMode === 'manual' || a.received.length >= N), 3000);
  await a.crash();
  const ids = new Set<string>();
  await member(env, b, 'B', { pattern: topic, group, ack: ackMode, start: { kind: 'earliest' } }, async (m, me) => {
    await effect(m);
    ids.add(decode(m).id);
    ack(me, m);
  });
  await until(() => ids.size >= N - (ackMode === 'none' ? a.received.length : 0), ackMode === 'none' ? 300 : 3000);
  return tally.score();
}

/** MQTT over a raw socket: CONNECT, then QOS_MESSAGES publishes at `qos`; every packet both ways counted by type. */
async function mqttQos(port: number, qos: 0 | 1 | 2): Promise<{ sent: Record<string, number>; received: Record<string, number> }> {
  const sock: Socket = connect(port, '127.0.0.1');
  const sent: Record<string, number> = {};
  const received: Record<string, number> = {};
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const waiters: Array<(p: Packet) => void> = [];
  parser.on('packet', (p: Packet) => {
    received[p.cmd] = (received[p.cmd] ?? 0) + 1;
    for (const w of waiters.splice(0)) w(p);
  });
  parser.on('error', () => sock.destroy());
  sock.on('data', (d) => parser.parse(d));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => undefined);
  const send = (p: Packet): void => {
    sent[p.cmd] = (sent[p.cmd] ?? 0) + 1;
    sock.write(mqttPacket.generate(p));
  };
  const next = (cmd: string): Promise<Packet> =>
    new Promise((resolve) => {
      const w = (p: Packet): void => {
        if (p.cmd === cmd) resolve(p);
        else waiters.push(w);
      };
      waiters.push(w);
    });
  let got = next('connack');
  send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `qos${qos}`, keepalive: 60 });
  await got;
  for (let i = 1; i <= QOS_MESSAGES; i++) {
    const payload = Buffer.from(`reading ${i}`);
    if (qos === 0) send({ cmd: 'publish', topic: 'sensors/t', payload, qos: 0, dup: false, retain: false });
    else if (qos === 1) {
      got = next('puback');
      send({ cmd: 'publish', topic: 'sensors/t', payload, qos: 1, messageId: i, dup: false, retain: false });
      await got;
    } else {
      got = next('pubrec');
      send({ cmd: 'publish', topic: 'sensors/t', payload, qos: 2, messageId: i, dup: false, retain: false });
      await got;
      got = next('pubcomp');
      send({ cmd: 'pubrel', messageId: i });
      await got;
    }
  }
  // A PINGREQ answered means every earlier packet was read (one connection, in order).
  got = next('pingresp');
  send({ cmd: 'pingreq' });
  await got;
  send({ cmd: 'disconnect' });
  sock.end();
  for (const t of ['connect', 'pingreq', 'disconnect']) delete sent[t];
  for (const t of ['connack', 'pingresp']) delete received[t];
  return { sent, received };
}

export default defineLab({
  id: 'delivery-semantics',
  title: 'At-most-once, at-least-once, effectively-once; MQTT QoS 0 / 1 / 2 on the wire',
  concept: 'A delivery guarantee is a choice of acks and retries: without them a crash or a cut link loses messages, with them they arrive twice, and only ids make the repeat harmless; MQTT spends 1, 2 or 4 packets per message on it.',
  protocols: ['pubsub', 'mqtt', 'tcp'],
  timeoutMs: 60_000,
  async run(ctx) {
    const env = new Env(ctx);
    const rows: Array<Array<string | number>> = [];
    const row = (where: string, mode: Mode, s: Score, extra: string): void => {
      rows.push([where, mode, s.sent, s.processed, s.lost, s.duplicated, extra]);
    };

    const link: Partial<Record<Mode, Awaited<ReturnType<typeof lossyProducer>>>> = {};
    for (const mode of MODES) {
      const r = (link[mode] = await lossyProducer(env, mode));
      row(`producer, link cut after ${CUT_AFTER_BYTES} B`, mode, r.score, `${r.cuts} cut, ${r.retried} publishes retried`);
    }
    const l = link as Record<Mode, Awaited<ReturnType<typeof lossyProducer>>>;
    ctx.claim('lossy link, at-most-once (acks 0, no retry): messages written into the cut connection are lost, none twice', l['at-most-once'].cuts === 1 && l['at-most-once'].score.lost > 0 && l['at-most-once'].score.duplicated === 0, `${l['at-most-once'].score.lost} of ${N} never stored`);
    ctx.claim('lossy link, at-least-once (acks 1, retry what was not acked): nothing lost, but what was stored before the cut and retried is stored twice', l['at-least-once'].cuts === 1 && l['at-least-once'].score.lost === 0 && l['at-least-once'].score.duplicated > 0, `${l['at-least-once'].retried} retried, ${l['at-least-once'].score.duplicated} stored twice, ${l['at-least-once'].score.lost} lost`);
    ctx.claim('lossy link, effectively-once (the same retries, each with its msgId): nothing lost, nothing stored twice', l['effectively-once'].cuts === 1 && l['effectively-once'].retried > 0 && l['effectively-once'].score.lost === 0 && l['effectively-once'].score.duplicated === 0, `${l['effectively-once'].retried} retried, ${l['effectively-once'].score.duplicated} stored twice`);

    const crash: Partial<Record<Mode, Score>> = {};
    for (const mode of MODES) {
      crash[mode] = await crashingConsumer(env, mode);
      row(`consumer crashes after ${CRASH_AFTER} effects`, mode, crash[mode]!, mode === 'at-most-once' ? 'ack none' : mode === 'at-least-once' ? 'manual ack' : 'manual ack + idempotent handler');
    }
    const c = crash as Record<Mode, Score>;
    ctx.claim('consumer crash, at-most-once: what the consumer held is lost, nothing is done twice', c['at-most-once'].lost > 0 && c['at-most-once'].duplicated === 0, `${c['at-most-once'].lost} lost`);
    ctx.claim('consumer crash, at-least-once: nothing is lost, the effects done before the missing acks are done twice', c['at-least-once'].lost === 0 && c['at-least-once'].duplicated === CRASH_AFTER, `${c['at-least-once'].duplicated} done twice`);
    ctx.claim('consumer crash, effectively-once: redelivered, and the idempotent handler does each effect once', c['effectively-once'].lost === 0 && c['effectively-once'].duplicated === 0 && c['effectively-once'].processed === N, `${c['effectively-once'].processed} effects for ${N}`);
    ctx.table('delivery guarantees: what was stored / done', ['where', 'mode', 'sent', 'stored or done', 'lost', 'duplicated', 'how'], rows);

    // MQTT QoS handshakes, counted on the client's socket.
    const b = await env.broker();
    const mqtt = await ctx.start(startMqttServer({ broker: b, tracer: ctx.tracer }));
    const qrows: Array<Array<string | number>> = [];
    const perMessage: number[] = [];
    for (const qos of [0, 1, 2] as const) {
      const { sent, received } = await mqttQos(mqtt.port, qos);
      const total = Object.values(sent).reduce((a, v) => a + v, 0) + Object.values(received).reduce((a, v) => a + v, 0);
      perMessage.push(total / QOS_MESSAGES);
      qrows.push([`QoS ${qos}`, QOS_MESSAGES, Object.entries(sent).map(([k, v]) => `${k} ${v}`).join(', '), Object.entries(received).map(([k, v]) => `${k} ${v}`).join(', ') || '-', total / QOS_MESSAGES]);
    }
    const stored = (await b.engine.read('sensors.t', 0, 0, 100)).length;
    ctx.table(`MQTT: packets on the wire for ${QOS_MESSAGES} publishes`, ['QoS', 'messages', 'client sent', 'broker sent', 'packets per message'], qrows);
    ctx.claim('MQTT QoS 0 / 1 / 2 cost 1, 2 and 4 packets per message (PUBLISH; + PUBACK; + PUBREC, PUBREL, PUBCOMP)', perMessage[0] === 1 && perMessage[1] === 2 && perMessage[2] === 4 && stored === 3 * QOS_MESSAGES, `${perMessage.join(' / ')} packets per message; ${stored} messages stored`);
  },
});
