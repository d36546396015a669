/**
 * Message signing: a producer signs with its key (Ed25519 or HMAC-SHA256), the broker (and any consumer) verifies.
 *
 * What is signed, exactly (the bytes `signedBytes` returns), v1:
 *   "wl-sig-v1\n" + topic + "\n" + (msgId ?? "") + "\n" + signedAt + "\n" + payload
 * where `signedAt` is the `wl-signed-at` header (milliseconds since the epoch, decimal) and the payload is raw bytes.
 * Headers on the message: `wl-signer` (the producer's key name), `wl-signed-at`, `wl-signature` (base64). The topic is
 * signed, so a message cannot be moved to another topic; msgId, so it cannot be re-sent as new past the dedup window;
 * signedAt, so the broker can refuse one older than `maxSkewMs`. Other headers and the key are not signed.
 */
import { createHmac, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { ErrorCodes, InvalidOptionError, PubsubError } from '../../core/errors.ts';
import type { Headers } from '../engines/types.ts';

export const SIGNER_HEADER = 'wl-signer';
export const SIGNATURE_HEADER = 'wl-signature';
export const SIGNED_AT_HEADER = 'wl-signed-at';

export type VerifyKey = { alg: 'ed25519'; publicKey: string | KeyObject } | { alg: 'hmac-sha256'; secret: string | Buffer };
export type SignKey = { alg: 'ed25519'; privateKey: string | KeyObject } | { alg: 'hmac-sha256'; secret: string | Buffer };

export interface SigningOptions {
  /** Producer name (the `wl-signer` header) -> its verification key. */
  keys: Record<string, VerifyKey>;
  /** Refuse unsigned publishes. Default false (a signed one is still verified). */
  require?: boolean;
  /** A signature whose wl-signed-at is further than this from the broker's clock is refused. Default 300,000 ms. */
  maxSkewMs?: number;
}

export interface SignInput {
  topic: string;
  payload: Buffer;
  msgId?: string;
  signer: string;
  key: SignKey;
  /** Default Date.now(). */
  signedAt?: number;
}

export function signedBytes(topic: string, payload: Buffer, msgId: string | undefined, signedAt: string): Buffer {
  return Buffer.concat([Buffer.from(`wl-sig-v1\n${topic}\n${msgId ?? ''}\n${signedAt}\n`), payload]);
}

/** The three headers a producer adds to a publish (merge them into its headers). */
export function signMessage(input: SignInput): Headers {
  const signedAt = String(input.signedAt ?? Date.now());
  const data = signedBytes(input.topic, input.payload, input.msgId, signedAt);
  const k = input.key;
  const sig =
    k.alg === 'ed25519'
      ? sign(null, data, typeof k.privateKey === 'string' ? createPrivateKey(k.privateKey) : k.privateKey)
      : createHmac('sha256', k.secret).update(data).digest();
  return { [SIGNER_HEADER]: input.signer, [SIGNED_AT_HEADER]: signedAt, [SIGNATURE_HEADER]: sig.toString('base64') };
}

/** Verification keys prepared once (PEM parsed) when the broker is built. */
export class SignatureVerifier {
  readonly #keys = new Map<string, { alg: 'ed25519'; key: KeyObject } | { alg: 'hmac-sha256'; secret: string | Buffer }>();
  readonly require: boolean;
  readonly maxSkewMs: number;

  constructor(options: SigningOptions) {
    if (typeof options !== 'object' || options === null || typeof options.keys !== 'object' || options.keys === null) {
      throw new InvalidOptionError('signing.keys', 'an object { [producer]: key }', options?.keys);
    }
    for (const [name, k] of Object.entries(options.keys)) {
      if (k?.alg === 'ed25519') {
        try {
          const key = typeof k.publicKey === 'string' ? createPublicKey(k.publicKey) : k.publicKey;
          if (key.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
          this.#keys.set(name, { alg: 'ed25519', key });
        } catch {
          throw new InvalidOptionError(`signing.keys.${name}.publicKey`, 'an Ed25519 public key (PEM or KeyObject)', k.publicKey);
        }
      } else if (k?.alg === 'hmac-sha256') {
        if (!(typeof k.secret === 'string' || Buffer.isBuffer(k.secret)) || k.secret.length < 16) {
          throw new InvalidOptionError(`signing.keys.${name}.secret`, 'a secret of 16 bytes or more', '(secret)');
        }
        this.#keys.set(name, { alg: 'hmac-sha256', secret: k.secret });
      } else {
        throw new InvalidOptionError(`signing.keys.${name}.alg`, "'ed25519' or 'hmac-sha256'", (k as { alg?: unknown })?.alg);
      }
    }
    this.require = options.require ?? false;
    this.maxSkewMs = options.maxSkewMs ?? 300_000;
  }

  /**
   * Throws WL_ERR_PUBSUB_SIGNATURE for a signature that does not verify (unknown signer, bad bytes, wrong key, too
   * old) or a missing one when signing is required. Returns the signer, or undefined for an accepted unsigned message.
   */
  check(topic: string, payload: Buffer, msgId: string | undefined, headers: Headers | undefined, now = Date.now()): string | undefined {
    const signer = headers?.[SIGNER_HEADER];
    const signature = headers?.[SIGNATURE_HEADER];
    const signedAt = headers?.[SIGNED_AT_HEADER];
    if (signer === undefined && signature === undefined) {
      if (this.require) throw bad('unsigned message where signing is required');
      return undefined;
    }
    if (signer === undefined || signature === undefined || signedAt === undefined) throw bad('incomplete signature headers');
    const key = this.#keys.get(signer);
    if (key === undefined) throw bad('unknown signer');
    const at = Number(signedAt);
    if (!/^\d{1,16}$/.test(signedAt) || Math.abs(now - at) > this.maxSkewMs) throw bad('signature time outside maxSkewMs');
    const sig = Buffer.from(signature, 'base64');
    const data = signedBytes(topic, payload, msgId, signedAt);
    const ok =
      key.alg === 'ed25519'
        ? sig.length === 64 && verify(null, data, key.key, sig)
        : sig.length === 32 && timingSafeEqual(createHmac('sha256', key.secret).update(data).digest(), sig);
    if (!ok) throw bad('signature does not verify');
    return signer;
  }
}

function bad(why: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_SIGNATURE, why);
}

/** For a consumer that verifies on its own: throws WL_ERR_PUBSUB_SIGNATURE unless the message is validly signed. */
export function verifyMessage(
  message: { topic: string; payload: Buffer; msgId?: string; headers: Headers },
  options: SigningOptions,
): string {
  const signer = new SignatureVerifier({ ...options, require: true }).check(message.topic, message.payload, message.msgId, message.headers);
  return signer!;
}
