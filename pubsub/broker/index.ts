/**
 * The pub/sub broker (issue 12): `createBroker(options)` on an engine, with auth, ACLs, signatures, limits, subscriber
 * buffers, rate limits, lineage and the trace. Front doors (pubsub/doors) turn connections into sessions.
 */
import { createEngine } from '../engines/index.ts';
import { BrokerCore } from './broker.ts';
import { resolveBrokerOptions, type BrokerOptions } from './options.ts';
import type { Broker } from './types.ts';

export type * from './types.ts';
export { OVERFLOW_POLICIES } from './types.ts';
export { BROKER_DEFAULTS, type BrokerOptions, type PublishValidator } from './options.ts';
export { hashPassword, verifyPassword, type BrokerUser, type HashPasswordOptions } from './auth.ts';
export type { Permissions, PermissionList } from './acl.ts';
export {
  signMessage,
  signedBytes,
  verifyMessage,
  SIGNER_HEADER,
  SIGNATURE_HEADER,
  SIGNED_AT_HEADER,
  type SigningOptions,
  type SignKey,
  type VerifyKey,
} from './signing.ts';
export { createIdempotentHandler, messageKey, type IdempotentHandler, type IdempotentOptions } from './idempotent.ts';

/** Builds the broker; rejects with an InvalidOptionError naming a bad option. */
export async function createBroker(options: BrokerOptions = {}): Promise<Broker> {
  const o = resolveBrokerOptions(options);
  let engine = o.engine;
  const owns = engine === undefined;
  if (engine === undefined) engine = await createEngine({ kind: 'embedded', dir: o.dataDir, fsync: o.fsync });
  // Existing topics count toward maxTopics: a broker restarted with a lower maxTopics still serves them, and
  // refuses new ones.
  const topics = await engine.topics();
  return new BrokerCore(engine, o, owns, topics);
}
