/** The native pub/sub client's options, their defaults and their checks (clients/pubsub.ts). */
import { checkInt, InvalidOptionError, withDefaults } from '../../core/options.ts';
import type { TlsSettings } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { DEFAULT_MAX_FRAME_BYTES } from '../../protocols/pubsub.ts';

export interface PubsubReconnectOptions {
  /** Attempts in a row before giving up (the client then stays closed). Default 10. */
  retries?: number;
  /** First wait; doubled each attempt with ±20 % jitter. Default 100 ms. */
  baseMs?: number;
  /** Longest wait. Default 5000 ms. */
  maxMs?: number;
}

export interface PubsubClientOptions {
  /** ws://host:port[/pubsub], wss://..., tcp://host:port or tls://host:port. Required. */
  url: string;
  user?: string;
  password?: string;
  token?: string;
  clientId?: string;
  /** Reconnect after an unexpected close and resubscribe. true = the defaults. Default off. */
  reconnect?: PubsubReconnectOptions | boolean;
  /** For wss:// and tls://: the local CA is trusted. Default {}. */
  tls?: TlsSettings;
  /** Largest frame accepted from the server. Default 1 MiB... times 16 (the server's limit is what bounds publishes). */
  maxFrameBytes?: number;
  /** Connecting plus the hello / welcome exchange. Default 5000 ms. */
  timeoutMs?: number;
  /** Publishes waiting for a connection (while reconnecting) or for their ack; one more rejects with WL_ERR_QUEUE_FULL. Default 10,000. */
  maxPendingPublishes?: number;
  /** Messages received and not yet read from a subscription's iterator; one more ends it with WL_ERR_QUEUE_FULL. Default 10,000. */
  maxQueued?: number;
  tracer?: Tracer;
}

export const PUBSUB_CLIENT_DEFAULTS = Object.freeze({
  maxFrameBytes: 16 * DEFAULT_MAX_FRAME_BYTES,
  timeoutMs: 5000,
  maxPendingPublishes: 10_000,
  maxQueued: 10_000,
  reconnect: Object.freeze({ retries: 10, baseMs: 100, maxMs: 5000 }),
});

/** The options with defaults filled in, checked (InvalidOptionError names the bad one). */
export function resolveOptions(options: PubsubClientOptions) {
  if (typeof options?.url !== 'string') throw new InvalidOptionError('url', 'a ws://, wss://, tcp:// or tls:// URL', options?.url);
  const o = withDefaults(PUBSUB_CLIENT_DEFAULTS, options);
  checkInt('maxFrameBytes', o.maxFrameBytes, 64, 1024 * 1024 * 1024);
  checkInt('timeoutMs', o.timeoutMs, 1, 3600_000);
  checkInt('maxPendingPublishes', o.maxPendingPublishes, 1, 10_000_000);
  checkInt('maxQueued', o.maxQueued, 1, 10_000_000);
  const reconnect = options.reconnect === true ? { ...PUBSUB_CLIENT_DEFAULTS.reconnect } : options.reconnect ? { ...PUBSUB_CLIENT_DEFAULTS.reconnect, ...options.reconnect } : false;
  if (reconnect) {
    checkInt('reconnect.retries', reconnect.retries, 0, 1_000_000);
    checkInt('reconnect.baseMs', reconnect.baseMs, 1, 3600_000);
    checkInt('reconnect.maxMs', reconnect.maxMs, 1, 3600_000);
  }
  return { ...o, reconnect };
}
