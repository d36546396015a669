/**
 * One native-protocol connection, whatever carries it (WebSocket or TCP): the hello, then publishes, subscriptions and
 * acks mapped onto a broker Session. ws.ts and tcp.ts give it a `NativeTransport` and feed it each frame.
 *
 * Flow control, both ways:
 * - to a subscriber: `Deliver` returns false once the transport says it is congested (socket.write returned false /
 *   the socket's buffer is past its high-water mark); the broker then buffers per its policy until `resume()`, which
 *   this connection calls on the socket's 'drain';
 * - from a publisher: with `maxPendingPublishes` publishes waiting for their ack (the broker's `block` policy holds a
 *   publish while a subscriber is full), the connection stops reading, so TCP pushes back on the producer.
 */
import { ErrorCodes, PubsubError, WirelabError } from '../../../core/errors.ts';
import { preview, type Tracer } from '../../../core/trace/index.ts';
import {
  PUBSUB_MIN_PROTOCOL_VERSION,
  PUBSUB_PROTOCOL_VERSION,
  type ClientMessage,
  type From,
  type MsgMessage,
  type Parsed,
  type PubMessage,
  type ServerMessage,
  type SubMessage,
} from '../../../protocols/pubsub.ts';
import type { Broker, Door, Message, PublishInput, Session, SubscribeInput, Subscription } from '../../broker/types.ts';
import type { StartPosition } from '../../engines/types.ts';

export interface NativeLimits {
  /** Largest frame accepted (WS: close 1009; TCP: an error frame, then close). Default 1 MiB. */
  maxFrameBytes?: number;
  /** Publishes waiting for their ack before the connection stops reading from the publisher. Default 256. */
  maxPendingPublishes?: number;
  /** The hello must arrive within this long, or the connection is closed. Default 10,000 ms. */
  helloTimeoutMs?: number;
  /** Connections at once (each a broker session; the broker's maxConnections also applies). Default 1024. */
  maxConnections?: number;
  /** Connections at once from one client address (TCP door). Default 256. */
  maxConnectionsPerAddress?: number;
}

export const NATIVE_LIMIT_DEFAULTS: Required<NativeLimits> = Object.freeze({
  maxFrameBytes: 1024 * 1024,
  maxPendingPublishes: 256,
  helloTimeoutMs: 10_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
});

/** What a door gives a connection. */
export interface NativeTransport {
  /** Writes one message; false when the transport is congested (a 'drain' will follow: call `drained`). */
  send(message: ServerMessage): boolean;
  /** Ends the connection after what was sent. `violation`: the peer broke the protocol (WS close 1002). */
  end(violation: boolean, reason: string): void;
  /** Stop / start reading from the peer (publisher backpressure). */
  pauseReading(): void;
  resumeReading(): void;
}

export interface NativeConnectionOptions {
  broker: Broker;
  door: Extract<Door, 'ws' | 'tcp'>;
  peer: string;
  tls: boolean;
  cid: string;
  tracer: Tracer;
  limits: Required<NativeLimits>;
  transport: NativeTransport;
}

export interface NativeStats {
  connections: number;
  /** Protocol violations: malformed frames, a first message other than hello, a second hello, a bad version (each closed its connection). */
  badFrames: number;
  published: number;
  delivered: number;
  /** Times a connection stopped reading because of pending publishes. */
  readPauses: number;
  /** Times a subscriber's transport said it was congested. */
  congested: number;
}

export function newNativeStats(): NativeStats {
  return { connections: 0, badFrames: 0, published: 0, delivered: 0, readPauses: 0, congested: 0 };
}

/** The error message for a thrown error: a PubsubError's code and limit, else WL_ERR_PUBSUB_INVALID. */
export function errorMessage(err: unknown, id?: number | string): ServerMessage {
  const code = err instanceof WirelabError ? err.code : ErrorCodes.PUBSUB_INVALID;
  const limit = err instanceof PubsubError ? err.limit : undefined;
  return {
    type: 'error',
    ...(id === undefined ? {} : { id }),
    code,
    message: err instanceof Error ? err.message : String(err),
    ...(limit === undefined ? {} : { limit }),
  };
}

function startOf(from: From | undefined): StartPosition | undefined {
  if (from === undefined) return undefined;
  if (from === 'new' || from === 'earliest') return { kind: from };
  if ('offset' in from) return from.partition === undefined ? { kind: 'offset', offset: from.offset } : { kind: 'offset', offset: from.offset, partition: from.partition };
  return { kind: 'time', time: from.time };
}

/** The broker's subscribe input for a `sub` message. */
export function subscribeInput(m: SubMessage): SubscribeInput {
  const input: SubscribeInput = { pattern: m.pattern };
  if (m.group !== undefined) input.group = { name: m.group, mode: m.mode ?? 'queue' };
  if (m.ack !== undefined) input.ack = m.ack;
  const start = startOf(m.from);
  if (start) input.start = start;
  if (m.replay !== undefined) input.replay = m.replay;
  if (m.buffer !== undefined) input.buffer = m.buffer;
  if (m.ackWaitMs !== undefined) input.ackWaitMs = m.ackWaitMs;
  if (m.maxDeliver !== undefined) input.maxDeliver = m.maxDeliver;
  if (m.maxAckPending !== undefined) input.maxAckPending = m.maxAckPending;
  if (m.backoffMs !== undefined) input.backoffMs = m.backoffMs;
  if (m.deadLetterTopic !== undefined) input.deadLetterTopic = m.deadLetterTopic;
  return input;
}

function msgOf(sub: string, m: Message): MsgMessage {
  const out: MsgMessage = {
    type: 'msg',
    sub,
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    ts: m.timestamp,
    headers: m.headers,
    payload: m.payload,
    attempt: m.attempt,
  };
  if (m.deliveryId !== undefined) out.deliveryId = m.deliveryId;
  if (m.key !== undefined) out.key = m.key;
  if (m.msgId !== undefined) out.msgId = m.msgId;
  return out;
}

/** What the trace shows of a message: never a password or a token. */
function describe(m: ClientMessage | ServerMessage): string {
  switch (m.type) {
    case 'hello':
      return `hello v${m.version}${m.user ? ` user=${m.user} password=***` : ''}${m.token ? ' token=***' : ''}${m.clientId ? ` clientId=${m.clientId}` : ''}`;
    case 'pub':
      return `pub #${m.id} ${m.topic}${m.key ? ` key=${m.key}` : ''} acks=${m.acks ?? 'default'} ${preview(m.payload)}`;
    case 'msg':
      return `msg ${m.sub} ${m.topic}[${m.partition}]@${m.offset} attempt ${m.attempt} ${preview(m.payload)}`;
    case 'sub':
      return `sub ${m.id} ${m.pattern}${m.group ? ` group=${m.group} (${m.mode ?? 'queue'})` : ''} ack=${m.ack ?? 'manual'}`;
    case 'puback':
      return `puback #${m.id} ${m.topic}[${m.partition}]@${m.offset}${m.duplicate ? ' duplicate' : ''}`;
    case 'error':
      return `error${m.id === undefined ? '' : ` #${m.id}`} ${m.code}${m.limit ? ` (${m.limit})` : ''}: ${m.message}`;
    default:
      return JSON.stringify(m).slice(0, 200);
  }
}

/** Runs one connection; returns what the door calls on each frame and on close. */
export interface NativeConnection {
  /** One frame as the door's parser checked it. */
  frame(parsed: Parsed<ClientMessage>): void;
  /** The transport closed (the peer, or the network). */
  closed(): void;
  /** The transport can take more after saying it was congested. */
  drained(): void;
}

export function openNativeConnection(o: NativeConnectionOptions, stats: NativeStats): NativeConnection {
  const { broker, tracer, cid, transport, limits } = o;
  let session: Session | undefined;
  let state: 'hello' | 'connecting' | 'open' | 'closed' = 'hello';
  const subs = new Map<string, Subscription | 'pending'>();
  let pending = 0;
  let readingPaused = false;
  let congested = false;
  /** Frames that arrived after the hello, before the welcome. */
  const early: ClientMessage[] = [];
  stats.connections++;

  const send = (m: ServerMessage): boolean => {
    if (state === 'closed') return true;
    if (tracer.enabled) tracer.emit('pubsub', cid, '<', m.type, () => ({ summary: describe(m), meta: { door: o.door } }));
    return transport.send(m);
  };
  const end = (violation: boolean, reason: string): void => {
    if (state === 'closed') return;
    state = 'closed';
    if (violation) stats.badFrames++;
    clearTimeout(helloTimer);
    tracer.emit('pubsub', cid, '*', 'close', () => ({ summary: `closing: ${reason}`, meta: { door: o.door, violation } }));
    transport.end(violation, reason);
    void shutdown(reason);
  };
  const shutdown = async (reason: string): Promise<void> => {
    const s = session;
    session = undefined;
    subs.clear();
    if (s) await s.close(reason).catch(() => undefined);
  };

  const helloTimer = setTimeout(() => {
    if (state !== 'hello' && state !== 'connecting') return;
    send(errorMessage(new PubsubError(ErrorCodes.PUBSUB_LIMIT, `no hello within helloTimeoutMs=${limits.helloTimeoutMs}`, { limit: 'helloTimeoutMs' })));
    end(false, 'no hello in time');
  }, limits.helloTimeoutMs);
  helloTimer.unref();

  /** The transport drained: every subscription may deliver what the broker buffered. */
  const drained = (): void => {
    if (!congested) return;
    congested = false;
    for (const s of subs.values()) if (s !== 'pending') s.resume();
  };

  const onHello = (m: Extract<ClientMessage, { type: 'hello' }>): void => {
    if (m.version < PUBSUB_MIN_PROTOCOL_VERSION || m.version > PUBSUB_PROTOCOL_VERSION) {
      send(errorMessage(new PubsubError(ErrorCodes.PUBSUB_INVALID, `protocol version ${m.version} is not supported; this server speaks ${PUBSUB_MIN_PROTOCOL_VERSION} to ${PUBSUB_PROTOCOL_VERSION}`)));
      return end(true, 'unsupported version');
    }
    state = 'connecting';
    const credentials = m.token !== undefined ? { token: m.token } : m.user !== undefined ? { user: m.user, password: m.password ?? '' } : undefined;
    broker
      .connect({ door: o.door, peer: o.peer, tls: o.tls, ...(credentials ? { credentials } : {}), ...(m.clientId ? { clientId: m.clientId } : {}) })
      .then((s) => {
        if (state === 'closed') return void s.close('connection closed').catch(() => undefined);
        session = s;
        state = 'open';
        clearTimeout(helloTimer);
        s.onClosed((reason) => {
          if (state === 'closed') return;
          send({ type: 'closed', reason });
          end(false, reason);
        });
        // The welcome echoes the client's version: a version 1 client never gets a compact frame.
        send({ type: 'welcome', version: m.version, session: s.id, ...(s.user ? { user: s.user } : {}), maxFrameBytes: limits.maxFrameBytes });
        for (const m of early.splice(0)) if (state === 'open') onMessage(m);
      })
      .catch((err: unknown) => {
        send(errorMessage(err));
        send({ type: 'closed', reason: err instanceof WirelabError ? err.code : 'refused' });
        end(false, 'connect refused');
      });
  };

  const onPub = (s: Session, m: PubMessage): void => {
    pending++;
    if (pending >= limits.maxPendingPublishes && !readingPaused) {
      readingPaused = true;
      stats.readPauses++;
      tracer.emit('pubsub', cid, '*', 'backpressure', () => ({ summary: `${pending} publishes pending (maxPendingPublishes): stop reading`, meta: { door: o.door } }));
      transport.pauseReading();
    }
    const input: PublishInput = { topic: m.topic, payload: m.payload };
    if (m.key !== undefined) input.key = m.key;
    if (m.partition !== undefined) input.partition = m.partition;
    if (m.headers !== undefined) input.headers = m.headers;
    if (m.msgId !== undefined) input.msgId = m.msgId;
    if (m.ttlMs !== undefined) input.ttlMs = m.ttlMs;
    if (m.acks !== undefined) input.acks = m.acks;
    // One reaction per publish (the ack or the error, then the pending count), not a then / catch / finally chain.
    s.publish(input).then(
      (r) => {
        stats.published++;
        if (m.acks !== 0) send({ type: 'puback', id: m.id, topic: r.topic, partition: r.partition, offset: r.offset, ts: r.timestamp, duplicate: r.duplicate });
        published();
      },
      (err: unknown) => {
        send(errorMessage(err, m.id));
        published();
      },
    );
  };

  /** A publish was answered: reading resumes once half of maxPendingPublishes are left. */
  const published = (): void => {
    pending--;
    if (readingPaused && pending < Math.max(1, limits.maxPendingPublishes >> 1) && state !== 'closed') {
      readingPaused = false;
      tracer.emit('pubsub', cid, '*', 'backpressure', () => ({ summary: `${pending} publishes pending: reading again`, meta: { door: o.door } }));
      transport.resumeReading();
    }
  };

  const onSub = (s: Session, m: SubMessage): void => {
    if (subs.has(m.id)) return void send(errorMessage(new PubsubError(ErrorCodes.PUBSUB_INVALID, `subscription id ${JSON.stringify(m.id)} is in use on this connection`), m.id));
    subs.set(m.id, 'pending');
    const deliver = (message: Message): boolean => {
      if (state === 'closed') return false;
      stats.delivered++;
      const ok = send(msgOf(m.id, message));
      if (!ok && !congested) {
        congested = true;
        stats.congested++;
      }
      return ok;
    };
    let input: SubscribeInput;
    try {
      input = subscribeInput(m);
    } catch (err) {
      subs.delete(m.id);
      return void send(errorMessage(err, m.id));
    }
    s.subscribe(input, deliver)
      .then((sub) => {
        if (state === 'closed' || subs.get(m.id) !== 'pending') return void sub.close().catch(() => undefined);
        subs.set(m.id, sub);
        send({ type: 'subscribed', id: m.id });
      })
      .catch((err: unknown) => {
        subs.delete(m.id);
        send(errorMessage(err, m.id));
      });
  };

  const onMessage = (m: ClientMessage): void => {
    if (state === 'hello') {
      if (m.type !== 'hello') {
        send(errorMessage(new PubsubError(ErrorCodes.PUBSUB_INVALID, `the first message must be hello, got ${m.type}`)));
        return end(true, 'no hello');
      }
      return onHello(m);
    }
    if (m.type === 'hello') {
      send(errorMessage(new PubsubError(ErrorCodes.PUBSUB_INVALID, 'hello was already sent')));
      return end(true, 'second hello');
    }
    const s = session;
    if (!s) {
      // Frames pipelined behind the hello while the broker checks it wait for the welcome (a client may send hello and
      // pub in one write), up to maxPendingPublishes of them.
      if (early.length >= limits.maxPendingPublishes) {
        send(errorMessage(new PubsubError(ErrorCodes.PUBSUB_LIMIT, `more than maxPendingPublishes=${limits.maxPendingPublishes} frames before welcome`, { limit: 'maxPendingPublishes' })));
        return end(false, 'too many frames before welcome');
      }
      early.push(m);
      return;
    }
    if (m.type === 'ping') return void send(m.id === undefined ? { type: 'pong' } : { type: 'pong', id: m.id });
    try {
      switch (m.type) {
        case 'pub':
          return onPub(s, m);
        case 'sub':
          return onSub(s, m);
        case 'unsub': {
          const sub = subs.get(m.id);
          if (!sub) return void send(errorMessage(new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no subscription ${JSON.stringify(m.id)}`), m.id));
          subs.delete(m.id);
          if (sub !== 'pending') void sub.close().catch(() => undefined);
          return;
        }
        case 'ack':
          return s.ack(m.deliveryId);
        case 'nak':
          return s.nak(m.deliveryId, m.delayMs);
        case 'progress':
          return s.inProgress(m.deliveryId);
        case 'term':
          return s.term(m.deliveryId, m.reason);
      }
    } catch (err) {
      send(errorMessage(err));
    }
  };

  return {
    frame(parsed) {
      if (state === 'closed') return;
      if (!parsed.ok) {
        tracer.emit('pubsub', cid, '>', 'bad-frame', () => ({ summary: `bad frame: ${parsed.problem}`, meta: { door: o.door } }));
        send({ type: 'error', ...(parsed.id === undefined ? {} : { id: parsed.id }), code: ErrorCodes.PUBSUB_INVALID, message: parsed.problem });
        return end(true, parsed.problem);
      }
      const m = parsed.message;
      if (tracer.enabled) tracer.emit('pubsub', cid, '>', m.type, () => ({ summary: describe(m), meta: { door: o.door } }));
      onMessage(m);
    },
    closed() {
      if (state === 'closed') return;
      state = 'closed';
      clearTimeout(helloTimer);
      tracer.emit('pubsub', cid, '*', 'close', () => ({ summary: 'the peer closed the connection', meta: { door: o.door } }));
      void shutdown('connection closed');
    },
    drained,
  };
}
