/** The MQTT door's options and limits, each with its default (README "### MQTT"). */
import { checkInt, checkString, InvalidOptionError, withDefaults } from '../../../core/options.ts';
import type { TlsSettings } from '../../../core/tls/index.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { Broker } from '../../broker/types.ts';

export interface MqttLimits {
  /** Largest MQTT packet (fixed header included) read; a bigger one is refused from its header (DISCONNECT 0x95 on 5). Default 1 MiB. */
  maxPacketBytes?: number;
  /** A connection that has not sent CONNECT by then is closed. Default 10,000 ms. */
  connectTimeoutMs?: number;
  /** Connections open at once on one listener (before CONNECT too); more are closed at once. Default 1024. */
  maxConnections?: number;
  /** The same from one client address. Default 256. */
  maxConnectionsPerAddress?: number;
  /** QoS 1 / 2 publishes a client may have unacknowledged towards the server (Receive Maximum in CONNACK on 5). Default 1000. */
  receiveMaximum?: number;
  /** Messages queued for one connection past its client's Receive Maximum window (then the broker buffers). Default 1000. */
  maxQueuedPerConnection?: number;
  /** Topic aliases a client may set (Topic Alias Maximum in CONNACK on 5). Default 64. */
  maxTopicAliases?: number;
  /** Longest client id (bytes); longer is refused (CONNACK 0x02 / 0x85). Default 128. */
  maxClientIdLength?: number;
  /** A persistent session (clean session 0, or session expiry > 0) ends this long after its client left; a bigger expiry asked is lowered. Default 7 days. */
  maxSessionExpirySeconds?: number;
  /** Persistent sessions kept at once; a new one past it is refused (CONNACK 0x03 / 0x97). Default 10,000. */
  maxSessions?: number;
  /** Topics holding a retained message; a new one past it is refused (PUBACK 0x97 on 5, disconnect on 3.1.1). Default 10,000. */
  maxRetained?: number;
  /** An unacknowledged QoS 1 / 2 delivery is sent again (DUP) after this, if the client has not answered. Default 300,000 ms. */
  redeliverAfterMs?: number;
}

export interface MqttServerOptions {
  /** The broker the door feeds (required). Listeners started on the same broker share sessions and retained messages. */
  broker: Broker;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Serve TLS (mqtts, or wss with `ws`) with the local certificate. Default off. */
  tls?: TlsSettings | boolean;
  /** Serve MQTT over WebSocket on this path (subprotocol `mqtt`) instead of raw TCP. Default off. */
  ws?: { path?: string };
  tracer?: Tracer;
  limits?: MqttLimits;
}

export type ResolvedLimits = Required<MqttLimits>;

export const MQTT_LIMITS_DEFAULTS: Readonly<ResolvedLimits> = Object.freeze({
  maxPacketBytes: 1024 * 1024,
  connectTimeoutMs: 10_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
  receiveMaximum: 1000,
  maxQueuedPerConnection: 1000,
  maxTopicAliases: 64,
  maxClientIdLength: 128,
  maxSessionExpirySeconds: 7 * 24 * 3600,
  maxSessions: 10_000,
  maxRetained: 10_000,
  redeliverAfterMs: 300_000,
});

export const MQTT_WS_DEFAULT_PATH = '/mqtt';

export function resolveLimits(limits: MqttLimits = {}): ResolvedLimits {
  const l = withDefaults(MQTT_LIMITS_DEFAULTS, limits) as ResolvedLimits;
  for (const k of Object.keys(limits)) {
    if (!(k in MQTT_LIMITS_DEFAULTS)) throw new InvalidOptionError(`limits.${k}`, 'a known MQTT limit', (limits as Record<string, unknown>)[k]);
  }
  checkInt('limits.maxPacketBytes', l.maxPacketBytes, 64, 268_435_455);
  checkInt('limits.connectTimeoutMs', l.connectTimeoutMs, 1, 3600_000);
  checkInt('limits.maxConnections', l.maxConnections, 1, 1_000_000);
  checkInt('limits.maxConnectionsPerAddress', l.maxConnectionsPerAddress, 1, 1_000_000);
  checkInt('limits.receiveMaximum', l.receiveMaximum, 1, 65535);
  checkInt('limits.maxQueuedPerConnection', l.maxQueuedPerConnection, 0, 1_000_000);
  checkInt('limits.maxTopicAliases', l.maxTopicAliases, 0, 65535);
  checkInt('limits.maxClientIdLength', l.maxClientIdLength, 1, 65535);
  checkInt('limits.maxSessionExpirySeconds', l.maxSessionExpirySeconds, 0, 0xffffffff);
  checkInt('limits.maxSessions', l.maxSessions, 0, 10_000_000);
  checkInt('limits.maxRetained', l.maxRetained, 0, 10_000_000);
  checkInt('limits.redeliverAfterMs', l.redeliverAfterMs, 1000, 24 * 3600_000);
  return l;
}

export function checkWsPath(path: unknown): string {
  const p = checkString('ws.path', path);
  if (!p.startsWith('/')) throw new InvalidOptionError('ws.path', 'a path starting with /', p);
  return p;
}
