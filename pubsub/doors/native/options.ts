import { checkInt } from '../../../core/options.ts';
import { InvalidOptionError } from '../../../core/errors.ts';
import type { TlsSettings } from '../../../core/tls/index.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { Broker } from '../../broker/types.ts';
import { NATIVE_LIMIT_DEFAULTS, type NativeLimits } from './connection.ts';

/** Options of both native doors (startPubsubWsServer, startPubsubTcpServer). */
export interface NativeDoorOptions {
  /** The broker every connection gets a session of. Required. */
  broker: Broker;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Serve wss:// / TLS with the local certificate (core/tls). Default off. */
  tls?: TlsSettings | boolean;
  /** Default: the NATIVE_LIMIT_DEFAULTS (maxFrameBytes 1 MiB, maxPendingPublishes 256, helloTimeoutMs 10 s, maxConnections 1024, maxConnectionsPerAddress 256). */
  limits?: NativeLimits;
  tracer?: Tracer;
}

export function checkNativeLimits(limits: NativeLimits | undefined): Required<NativeLimits> {
  const l = { ...NATIVE_LIMIT_DEFAULTS };
  for (const [k, v] of Object.entries(limits ?? {})) if (v !== undefined) (l as Record<string, number>)[k] = v as number;
  checkInt('limits.maxFrameBytes', l.maxFrameBytes, 64, 256 * 1024 * 1024);
  checkInt('limits.maxPendingPublishes', l.maxPendingPublishes, 1, 1_000_000);
  checkInt('limits.helloTimeoutMs', l.helloTimeoutMs, 1, 3600_000);
  checkInt('limits.maxConnections', l.maxConnections, 1, 1_000_000);
  checkInt('limits.maxConnectionsPerAddress', l.maxConnectionsPerAddress, 1, 1_000_000);
  return l;
}

export function checkBroker(broker: unknown): Broker {
  if (typeof broker !== 'object' || broker === null || typeof (broker as Broker).connect !== 'function') throw new InvalidOptionError('broker', 'a Broker (pubsub/broker createBroker)', broker);
  return broker as Broker;
}
