/**
 * One MQTT connection: the state machine (awaiting-connect -> connected -> closed), CONNECT / CONNACK, keep-alive,
 * will, DISCONNECT, and the dispatch of every other packet to publish-in.ts (PUBLISH from the client, the QoS 1 / 2
 * exchanges it starts) and deliver.ts (SUBSCRIBE, UNSUBSCRIBE, messages to the client and their acks).
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { IConnectPacket, IDisconnectPacket, Packet } from 'mqtt-packet';
import { PubsubError } from '../../../core/errors.ts';
import type { Ends, EventBody, Tracer } from '../../../core/trace/index.ts';
import type { Session } from '../../broker/types.ts';
import type { LiveConnection, MqttDoor, Will } from './door.ts';
import { encodePacket, connectLevel, PACKET_TYPES, PacketReader, type FramingError } from './framing.ts';
import { CONNACK_V4, connackForError, RC } from './reasons.ts';
import type { StoredSession } from './store.ts';
import { topicToSubject } from './topics.ts';
import { Deliveries } from './deliver.ts';
import { Publishes, headersFromProperties } from './publish-in.ts';

export type State = 'awaiting-connect' | 'connecting' | 'connected' | 'closed';

export interface ConnectionContext {
  cid: string;
  peer: string;
  tls: boolean;
  /** The connection's ends for the accept event (role, conversation, addresses). */
  ends?: () => Partial<Ends>;
  tracer: Tracer;
  onClose(): void;
}

const TRACE = 'mqtt';

function describe(p: Packet): string {
  const a = p as unknown as Record<string, unknown>;
  const parts: string[] = [p.cmd.toUpperCase()];
  if (a.messageId !== undefined) parts.push(`id=${String(a.messageId)}`);
  if (p.cmd === 'publish') parts.push(`qos=${p.qos}${p.retain ? ' retain' : ''}${p.dup ? ' dup' : ''} ${JSON.stringify(p.topic)} ${p.payload.length} B`);
  if (p.cmd === 'subscribe') parts.push(p.subscriptions.map((s) => `${s.topic}@${s.qos}`).join(' '));
  if (p.cmd === 'suback' || p.cmd === 'unsuback') parts.push(`codes=${JSON.stringify(p.granted ?? (p as { reasonCode?: unknown }).reasonCode)}`);
  if (a.reasonCode !== undefined && p.cmd !== 'suback') parts.push(`reason=0x${Number(a.reasonCode).toString(16)}`);
  if (a.returnCode !== undefined) parts.push(`rc=${String(a.returnCode)}`);
  return parts.join(' ');
}

export class MqttConnection implements LiveConnection {
  state: State = 'awaiting-connect';
  version: 4 | 5 = 4;
  clientId = '';
  session: Session | undefined;
  stored: StoredSession | undefined;
  will: Will | undefined;
  readonly door: MqttDoor;
  readonly stream: Duplex;
  readonly ctx: ConnectionContext;
  readonly reader: PacketReader;
  readonly publishes: Publishes;
  readonly deliveries: Deliveries;
  /** Client's limits (MQTT 5 CONNECT properties). */
  clientReceiveMaximum = 65535;
  clientTopicAliasMaximum = 0;
  clientMaximumPacketSize = 268_435_455;
  #keepAliveMs = 0;
  #lastSeen = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #endedCleanly = false;
  #corked = false;
  /**
   * Packets (and a framing error) that came in the same read as CONNECT, kept until CONNACK: a client may send them
   * before it has CONNACK (MQTT 3.1.4). The transport is paused meanwhile, so this holds one read at most.
   */
  #early: (Packet | FramingError)[] = [];

  constructor(door: MqttDoor, stream: Duplex, ctx: ConnectionContext) {
    this.door = door;
    this.stream = stream;
    this.ctx = ctx;
    this.publishes = new Publishes(this);
    this.deliveries = new Deliveries(this);
    this.reader = new PacketReader(door.limits.maxPacketBytes, {
      packet: (p) => this.#onPacket(p),
      error: (e) => this.#onFramingError(e),
    });
    stream.on('data', (chunk: Buffer) => {
      this.#lastSeen = Date.now();
      this.reader.push(chunk);
    });
    stream.on('error', (err: Error) => this.trace('*', 'error', () => `transport: ${err.message}`));
    stream.on('close', () => void this.end('connection closed', false));
    stream.on('drain', () => this.deliveries.resumeAll());
    this.#timer = setTimeout(() => {
      if (this.state !== 'awaiting-connect') return;
      this.badInput('connect-timeout', `no CONNECT within connectTimeoutMs=${door.limits.connectTimeoutMs}`, undefined);
    }, door.limits.connectTimeoutMs);
    this.trace('*', 'accept', () => ({ summary: `connection from ${ctx.peer}${ctx.tls ? ' (TLS)' : ''}`, ...ctx.ends?.() }));
  }

  trace(dir: '>' | '<' | '*', kind: string, build: () => EventBody): void {
    this.ctx.tracer.emit(TRACE, this.ctx.cid, dir, kind, build);
  }

  /**
   * Encodes and writes a packet; false when the transport is congested. Writes in one turn of the event loop are
   * corked together (one syscall for a burst of deliveries).
   */
  send(packet: Packet): boolean {
    if (this.state === 'closed' || this.stream.destroyed) return false;
    if (this.ctx.tracer.enabled) this.trace('<', packet.cmd, () => describe(packet));
    return this.#write(encodePacket(packet, this.version));
  }

  /** Writes a packet already encoded (a PUBLISH shared by several subscribers); `packet` builds it for the trace (when tracing). */
  sendEncoded(bytes: Buffer, packet: (() => Packet) | undefined): boolean {
    if (this.state === 'closed' || this.stream.destroyed) return false;
    if (packet !== undefined && this.ctx.tracer.enabled) this.trace('<', 'publish', () => describe(packet()));
    return this.#write(bytes);
  }

  #write(bytes: Buffer): boolean {
    if (!this.#corked) {
      this.#corked = true;
      this.stream.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.stream.uncork();
      });
    }
    return this.stream.write(bytes);
  }

  get congested(): boolean {
    return this.stream.writableNeedDrain;
  }

  /**
   * Bad input: traced and counted; on MQTT 5 (once CONNECT said so) a DISCONNECT with `reason`, then the connection
   * closes (3.1.1 has no answer but closing). The server keeps serving everyone else.
   */
  badInput(kind: string, message: string, reason: number | undefined): void {
    this.door.stats.badInput++;
    this.trace('*', 'bad-input', () => ({ summary: `${kind}: ${message}`, meta: { kind, reason } }));
    if (this.state === 'connected' && this.version === 5 && reason !== undefined) {
      this.send({ cmd: 'disconnect', reasonCode: reason, properties: { reasonString: message.slice(0, 200) } } as IDisconnectPacket);
    }
    void this.end(kind, false);
  }

  #onFramingError(e: FramingError): void {
    if (this.state === 'connecting') {
      this.#early.push(e);
      return;
    }
    if (e.kind === 'too-large') return this.badInput('packet-too-large', e.message, RC.PACKET_TOO_LARGE);
    if (e.kind === 'malformed-length') return this.badInput('malformed-length', e.message, RC.MALFORMED);
    if (e.packetType === 1 && this.state === 'awaiting-connect' && /protocol version/i.test(e.message)) {
      const level = connectLevel(e.head);
      return this.#refuseConnect('unsupported-protocol-level', `protocol level ${String(level)} (4 and 5 are served)`, { v5: RC.UNSUPPORTED_PROTOCOL_VERSION, v4: CONNACK_V4.UNACCEPTABLE_PROTOCOL_VERSION }, (level ?? 0) > 5 ? 5 : 4);
    }
    this.badInput('malformed', `${PACKET_TYPES[e.packetType] ?? '?'}: ${e.message}`, RC.MALFORMED);
  }

  #onPacket(p: Packet): void {
    if (this.state === 'closed') return;
    if (this.ctx.tracer.enabled) this.trace('>', p.cmd, () => describe(p));
    if (this.state === 'awaiting-connect') {
      if (p.cmd !== 'connect') return this.badInput('before-connect', `${p.cmd.toUpperCase()} before CONNECT`, undefined);
      this.stream.pause();
      void this.#connect(p).catch((err: unknown) => this.badInput('connect-failed', err instanceof Error ? err.message : String(err), RC.UNSPECIFIED));
      return;
    }
    if (this.state === 'connecting') {
      this.#early.push(p);
      return;
    }
    switch (p.cmd) {
      case 'publish':
        return this.publishes.onPublish(p);
      case 'pubrel':
        return this.publishes.onPubrel(p);
      case 'puback':
      case 'pubrec':
      case 'pubcomp':
        return this.deliveries.onAck(p);
      case 'subscribe':
        return void this.deliveries.onSubscribe(p);
      case 'unsubscribe':
        return void this.deliveries.onUnsubscribe(p);
      case 'pingreq':
        this.send({ cmd: 'pingresp' });
        return;
      case 'disconnect':
        return this.#onDisconnect(p);
      case 'connect':
        return this.badInput('second-connect', 'a second CONNECT', RC.PROTOCOL_ERROR);
      default:
        return this.badInput('unexpected-packet', `${p.cmd.toUpperCase()} from a client`, RC.PROTOCOL_ERROR);
    }
  }

  #refuseConnect(kind: string, message: string, code: { v5: number; v4: number }, version: 4 | 5): void {
    this.door.stats.refused++;
    this.trace('*', 'refused', () => ({ summary: `${kind}: ${message}`, meta: { kind, code } }));
    this.version = version;
    this.state = 'connecting';
    if (version === 5) this.send({ cmd: 'connack', sessionPresent: false, reasonCode: code.v5 });
    else this.send({ cmd: 'connack', sessionPresent: false, returnCode: code.v4 });
    void this.end(kind, true);
  }

  async #connect(p: IConnectPacket): Promise<void> {
    this.state = 'connecting';
    clearTimeout(this.#timer);
    const limits = this.door.limits;
    const v = p.protocolVersion === 5 ? 5 : p.protocolVersion === 4 ? 4 : undefined;
    if (v === undefined) {
      return this.#refuseConnect('unsupported-protocol-level', `protocol level ${p.protocolVersion}`, { v5: RC.UNSUPPORTED_PROTOCOL_VERSION, v4: CONNACK_V4.UNACCEPTABLE_PROTOCOL_VERSION }, 4);
    }
    this.version = v;
    const props = p.properties ?? {};
    let expiry = v === 5 ? (props.sessionExpiryInterval ?? 0) : p.clean ? 0 : limits.maxSessionExpirySeconds;
    const askedExpiry = expiry;
    expiry = Math.min(expiry, limits.maxSessionExpirySeconds);
    let clientId = p.clientId;
    let assigned: string | undefined;
    if (clientId === '') {
      if (v === 4 && !p.clean) return this.#refuseConnect('client-id', 'empty client id with clean session 0', { v5: RC.CLIENT_ID_NOT_VALID, v4: CONNACK_V4.IDENTIFIER_REJECTED }, v);
      clientId = assigned = `wl-${randomBytes(8).toString('hex')}`;
    }
    if (Buffer.byteLength(clientId) > limits.maxClientIdLength) {
      return this.#refuseConnect('client-id', `client id longer than maxClientIdLength=${limits.maxClientIdLength}`, { v5: RC.CLIENT_ID_NOT_VALID, v4: CONNACK_V4.IDENTIFIER_REJECTED }, v);
    }
    let will: Will | undefined;
    if (p.will) {
      try {
        const wp = p.will.properties ?? {};
        will = {
          subject: topicToSubject(p.will.topic),
          payload: Buffer.isBuffer(p.will.payload) ? p.will.payload : Buffer.from(p.will.payload),
          qos: p.will.qos ?? 0,
          retain: p.will.retain ?? false,
          headers: headersFromProperties(wp, p.will.qos ?? 0, p.will.retain ?? false, clientId),
          ...(wp.messageExpiryInterval !== undefined ? { ttlMs: wp.messageExpiryInterval * 1000 } : {}),
          delayMs: Math.min(wp.willDelayInterval ?? 0, expiry) * 1000,
        };
      } catch (err) {
        return this.#refuseConnect('will-topic', err instanceof Error ? err.message : String(err), { v5: RC.TOPIC_NAME_INVALID, v4: CONNACK_V4.NOT_AUTHORIZED }, v);
      }
    }
    const password = p.password?.toString('utf8');
    const credentials = p.username !== undefined ? { user: p.username, password: password ?? '' } : password !== undefined ? { token: password } : undefined;
    let session: Session;
    try {
      if (expiry > 0) this.door.store.checkRoom(clientId);
      session = await this.door.broker.connect({ door: 'mqtt', peer: this.ctx.peer, tls: this.ctx.tls, credentials, clientId });
    } catch (err) {
      const code = err instanceof PubsubError ? err.code : undefined;
      return this.#refuseConnect('connect-refused', err instanceof Error ? err.message : String(err), connackForError(code), v);
    }
    if (this.stream.destroyed) {
      await session.close('client gone');
      return;
    }
    this.session = session;
    this.clientId = clientId;
    this.will = will;
    if (v === 5) {
      this.clientReceiveMaximum = props.receiveMaximum ?? 65535;
      this.clientTopicAliasMaximum = props.topicAliasMaximum ?? 0;
      this.clientMaximumPacketSize = props.maximumPacketSize ?? 268_435_455;
    }
    session.onClosed((reason) => {
      if (this.state !== 'closed') this.badInput('broker-closed', reason, RC.SERVER_SHUTTING_DOWN);
    });
    // Take the client id over: the old connection ends, a pending will of the id is cancelled.
    const old = this.door.live.get(clientId);
    this.door.live.set(clientId, this);
    if (old && old !== this) await old.takeOver();
    this.door.cancelWill(clientId);
    this.door.cancelExpiry(clientId);

    const clean = v === 5 ? p.clean !== false : p.clean !== false;
    let previous = this.door.store.sessions.get(clientId);
    if (previous && this.door.store.expired(previous)) previous = undefined;
    if (clean || !previous) {
      if (previous || this.door.store.sessions.has(clientId)) await this.door.store.deleteSession(clientId);
      this.door.runtime.delete(clientId);
      previous = undefined;
    }
    const sessionPresent = previous !== undefined;
    if (expiry > 0) {
      this.stored = {
        clientId,
        generation: previous?.generation ?? Date.now(),
        expirySeconds: expiry,
        protocolVersion: v,
        subscriptions: previous?.subscriptions ?? [],
        nextSeq: previous?.nextSeq ?? 0,
      };
      await this.door.store.saveSession(this.stored);
    }
    this.#keepAliveMs = (p.keepalive ?? 0) * 1500;
    this.state = 'connected';
    this.door.stats.connections++;
    if (sessionPresent) this.door.stats.sessionsResumed++;
    if (v === 5) {
      this.send({
        cmd: 'connack',
        sessionPresent,
        reasonCode: RC.SUCCESS,
        properties: {
          ...(askedExpiry !== expiry ? { sessionExpiryInterval: expiry } : {}),
          receiveMaximum: limits.receiveMaximum,
          maximumPacketSize: limits.maxPacketBytes,
          topicAliasMaximum: limits.maxTopicAliases,
          ...(assigned ? { assignedClientIdentifier: assigned } : {}),
          retainAvailable: true,
          wildcardSubscriptionAvailable: true,
          subscriptionIdentifiersAvailable: true,
          sharedSubscriptionAvailable: true,
        },
      });
    } else {
      this.send({ cmd: 'connack', sessionPresent, returnCode: CONNACK_V4.ACCEPTED });
    }
    this.trace('*', 'session', () => ({
      summary: `${clientId}: ${expiry > 0 ? `persistent (expiry ${expiry} s)` : 'clean'}${sessionPresent ? ', resumed' : ''}`,
      meta: { clientId, expiry, sessionPresent, version: v },
    }));
    this.#armKeepAlive();
    if (previous) await this.deliveries.resume(previous.subscriptions);
    const early = this.#early;
    this.#early = [];
    for (const x of early) {
      if (this.state !== 'connected') break;
      if ('cmd' in x) this.#onPacket(x);
      else this.#onFramingError(x);
    }
    if (this.state === 'connected') this.stream.resume();
  }

  #armKeepAlive(): void {
    if (this.#keepAliveMs <= 0 || this.state !== 'connected') return;
    const due = this.#lastSeen + this.#keepAliveMs - Date.now();
    this.#timer = setTimeout(() => {
      if (this.state !== 'connected') return;
      if (Date.now() - this.#lastSeen >= this.#keepAliveMs) {
        return this.badInput('keep-alive-timeout', `silent for 1.5 x keep-alive (${this.#keepAliveMs} ms)`, RC.KEEP_ALIVE_TIMEOUT);
      }
      this.#armKeepAlive();
    }, Math.max(due, 10));
    this.#timer.unref();
  }

  #onDisconnect(p: IDisconnectPacket): void {
    // MQTT 5: reason 0x04 "disconnect with will message" keeps the will.
    this.#endedCleanly = p.reasonCode !== 0x04;
    const expiry = p.properties?.sessionExpiryInterval;
    if (this.version === 5 && expiry !== undefined) {
      const e = Math.min(expiry, this.door.limits.maxSessionExpirySeconds);
      if (this.stored) this.stored.expirySeconds = e;
      else if (e > 0) this.badInput('protocol-error', 'session expiry set at DISCONNECT after 0 at CONNECT', RC.PROTOCOL_ERROR);
    }
    void this.end('client disconnected', this.#endedCleanly);
  }

  async takeOver(): Promise<void> {
    if (this.state === 'closed') return;
    this.trace('*', 'taken-over', () => `client id ${this.clientId} connected again`);
    if (this.version === 5) this.send({ cmd: 'disconnect', reasonCode: RC.SESSION_TAKEN_OVER });
    await this.end('session taken over', false, true);
  }

  /**
   * Ends the connection once: the will (unless the client said DISCONNECT), the broker session (its unacked
   * deliveries go back to their group: the persistent session's queue), the stored session's disconnect time.
   */
  async end(reason: string, clean: boolean, takenOver = false): Promise<void> {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    clearTimeout(this.#timer);
    this.trace('*', 'close', () => ({ summary: `${reason}${clean ? '' : ' (unclean)'}`, meta: { clean } }));
    if (!this.stream.destroyed) {
      this.stream.end();
      const t = setTimeout(() => this.stream.destroy(), 1000);
      t.unref();
    }
    this.ctx.onClose();
    if (!wasConnected || !this.session) return;
    const session = this.session;
    await this.deliveries.closeAll();
    if (!takenOver && this.door.live.get(this.clientId) === this) this.door.live.delete(this.clientId);
    if (this.stored) {
      this.stored.disconnectedAt = Date.now();
      await this.door.store.saveSession(this.stored).catch(() => undefined);
      if (!this.door.live.has(this.clientId)) this.door.scheduleExpiry(this.clientId, this.stored.expirySeconds);
    } else if (!this.door.live.has(this.clientId)) {
      this.door.runtime.delete(this.clientId);
    }
    const will = this.will;
    if (!clean && will) {
      this.door.scheduleWill(this.clientId, will, session, () => this.publishes.publishWill(session, will));
    } else {
      await session.close(reason).catch(() => undefined);
    }
  }
}
