/** The broker's options, their defaults (README "The broker: delivery, flow control, security") and their checks. */
import { checkBoolean, checkInt, checkOneOf, withDefaults, type WithDefaults } from '../../core/options.ts';
import { InvalidOptionError } from '../../core/errors.ts';
import type { Tracer } from '../../core/trace/index.ts';
import type { Acks, Engine } from '../engines/types.ts';
import { FSYNC_POLICIES, type FsyncPolicy } from '../log/types.ts';
import { OVERFLOW_POLICIES, type OverflowPolicy } from './types.ts';
import { checkPermissions, type Permissions } from './acl.ts';
import { isPasswordHash, type BrokerUser } from './auth.ts';
import type { SigningOptions } from './signing.ts';
import { checkPattern } from '../subjects.ts';

export interface BrokerOptions {
  /** The engine to run on. Absent: an embedded engine on `dataDir` (createEngine). */
  engine?: Engine;
  /** For the embedded engine made when `engine` is absent: its directory; null = in memory. Default null. */
  dataDir?: string | null;
  /** For the embedded engine made when `engine` is absent. Default 'batch'. */
  fsync?: FsyncPolicy;
  /** Producer acks when a publish names none. Default 'all' (with fsync 'never': 1). */
  defaultAcks?: Acks;
  /** Users (scrypt password hashes from hashPassword, or tokens) with their permissions. Default [] (no users). */
  users?: BrokerUser[];
  /** Sessions without credentials. Default: true when no users are configured (a local playground), else false. */
  allowAnonymous?: boolean;
  /** Permissions of anonymous sessions. Default {} (everything). */
  anonymousPermissions?: Permissions;
  /** Accept passwords and tokens over a transport without TLS. Default false. */
  allowInsecureAuth?: boolean;
  /** Message signatures verified on publish (headers wl-signer / wl-signed-at / wl-signature). Default: none. */
  signing?: SigningOptions;
  /** A token bucket per publishing session. Default: none. */
  rateLimit?: { perSecond: number; burst: number };
  /** Sessions open at once. Default 10,000. */
  maxConnections?: number;
  /** Topics (including `$dlq.*`) the broker creates on publish. Default 10,000. */
  maxTopics?: number;
  /** Subscriptions per session. Default 1,000. */
  maxSubscriptionsPerConnection?: number;
  /** Largest payload accepted. Default 1,048,576 bytes (1 MiB). */
  maxPayloadBytes?: number;
  /** Largest total of header names and values (plus the key). Default 16,384 bytes. */
  maxHeaderBytes?: number;
  /** Subscriber buffer when a subscription names none. Default { size: 1000, policy: 'block' }. */
  buffer?: { size?: number; policy?: OverflowPolicy };
  /**
   * How long a publish may wait for one full 'block' subscriber before that subscriber is cut as a slow consumer
   * (session closed with reason 'slow consumer', counted). Default 5,000 ms; 0 = wait forever.
   */
  maxBlockMs?: number;
  /** Messages whose lineage is kept in memory for broker.lineage(). Default 10,000; 0 = none. */
  maxLineageMessages?: number;
  /**
   * In-broker validation at publish: a message to a topic matching `pattern` is stored only if `validate` returns no
   * issue; otherwise the publish is refused with WL_ERR_PUBSUB_INVALID naming the issues (counted in
   * stats().rejected.invalid, traced). `pubsub/schema`'s schemaValidator() checks payloads against the registry.
   * Default: none.
   */
  validators?: PublishValidator[];
  tracer?: Tracer;
}

/** Why a message may not be stored (empty or undefined: it may). */
export interface PublishValidator {
  pattern: string;
  validate(message: { topic: string; payload: Buffer; headers?: Record<string, string> }): string[] | undefined | Promise<string[] | undefined>;
}

export const BROKER_DEFAULTS = {
  dataDir: null as string | null,
  fsync: 'batch' as FsyncPolicy,
  users: [] as BrokerUser[],
  anonymousPermissions: {} as Permissions,
  allowInsecureAuth: false,
  maxConnections: 10_000,
  maxTopics: 10_000,
  maxSubscriptionsPerConnection: 1_000,
  maxPayloadBytes: 1_048_576,
  maxHeaderBytes: 16_384,
  buffer: { size: 1000, policy: 'block' as OverflowPolicy },
  maxBlockMs: 5_000,
  maxLineageMessages: 10_000,
};

export type ResolvedBrokerOptions = WithDefaults<typeof BROKER_DEFAULTS, BrokerOptions> & {
  defaultAcks: Acks;
  allowAnonymous: boolean;
  buffer: { size: number; policy: OverflowPolicy };
};

export function checkAcks(option: string, v: unknown): Acks {
  if (v === 0 || v === 1 || v === 'all') return v;
  throw new InvalidOptionError(option, "0, 1 or 'all'", v);
}

export function checkBuffer(option: string, v: unknown, base: { size: number; policy: OverflowPolicy }): { size: number; policy: OverflowPolicy } {
  if (v === undefined) return base;
  if (typeof v !== 'object' || v === null) throw new InvalidOptionError(option, 'an object { size?, policy? }', v);
  const b = v as { size?: unknown; policy?: unknown };
  return {
    size: b.size === undefined ? base.size : checkInt(`${option}.size`, b.size, 1, 1_000_000),
    policy: b.policy === undefined ? base.policy : checkOneOf(`${option}.policy`, b.policy, OVERFLOW_POLICIES),
  };
}

export function resolveBrokerOptions(options: BrokerOptions): ResolvedBrokerOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
  const o = withDefaults(BROKER_DEFAULTS, options);
  checkOneOf('fsync', o.fsync, FSYNC_POLICIES);
  if (o.dataDir !== null && (typeof o.dataDir !== 'string' || o.dataDir === '')) throw new InvalidOptionError('dataDir', 'a directory or null', o.dataDir);
  if (!Array.isArray(o.users)) throw new InvalidOptionError('users', 'an array', o.users);
  const names = new Set<string>();
  o.users.forEach((u, i) => {
    if (typeof u?.name !== 'string' || u.name === '') throw new InvalidOptionError(`users[${i}].name`, 'a non-empty string', u?.name);
    if (names.has(u.name)) throw new InvalidOptionError(`users[${i}].name`, 'a unique name', u.name);
    names.add(u.name);
    if (u.passwordHash === undefined && u.token === undefined) throw new InvalidOptionError(`users[${i}]`, 'a passwordHash or a token', '(neither)');
    if (u.passwordHash !== undefined && !isPasswordHash(u.passwordHash)) throw new InvalidOptionError(`users[${i}].passwordHash`, 'a hash from hashPassword()', '(not one)');
    if (u.token !== undefined && (typeof u.token !== 'string' || u.token.length < 8)) throw new InvalidOptionError(`users[${i}].token`, 'a string of 8 characters or more', '(too short)');
    checkPermissions(`users[${i}].permissions`, u.permissions);
  });
  checkPermissions('anonymousPermissions', o.anonymousPermissions);
  const allowAnonymous = o.allowAnonymous === undefined ? o.users.length === 0 : checkBoolean('allowAnonymous', o.allowAnonymous);
  checkBoolean('allowInsecureAuth', o.allowInsecureAuth);
  const defaultAcks = o.defaultAcks === undefined ? (o.fsync === 'never' ? 1 : 'all') : checkAcks('defaultAcks', o.defaultAcks);
  if (o.rateLimit !== undefined) {
    const r = o.rateLimit;
    if (typeof r !== 'object' || r === null || typeof r.perSecond !== 'number' || !(r.perSecond > 0) || !Number.isFinite(r.perSecond)) {
      throw new InvalidOptionError('rateLimit.perSecond', 'a number > 0', r?.perSecond);
    }
    checkInt('rateLimit.burst', r.burst, 1, 1_000_000_000);
  }
  checkInt('maxConnections', o.maxConnections, 1, 10_000_000);
  checkInt('maxTopics', o.maxTopics, 1, 10_000_000);
  checkInt('maxSubscriptionsPerConnection', o.maxSubscriptionsPerConnection, 1, 10_000_000);
  checkInt('maxPayloadBytes', o.maxPayloadBytes, 0, 2 ** 30);
  checkInt('maxHeaderBytes', o.maxHeaderBytes, 0, 2 ** 24);
  checkInt('maxBlockMs', o.maxBlockMs, 0, 2 ** 31 - 1);
  checkInt('maxLineageMessages', o.maxLineageMessages, 0, 10_000_000);
  if (options.validators !== undefined) {
    if (!Array.isArray(options.validators)) throw new InvalidOptionError('validators', 'an array of { pattern, validate }', options.validators);
    options.validators.forEach((v, i) => {
      if (typeof v?.validate !== 'function') throw new InvalidOptionError(`validators[${i}].validate`, 'a function', v?.validate);
      try {
        checkPattern(v.pattern);
      } catch {
        throw new InvalidOptionError(`validators[${i}].pattern`, 'a topic pattern', v.pattern);
      }
    });
  }
  const buffer = checkBuffer('buffer', options.buffer, BROKER_DEFAULTS.buffer);
  return { ...o, allowAnonymous, defaultAcks, buffer } as ResolvedBrokerOptions;
}
