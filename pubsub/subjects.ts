/**
 * Topic names and patterns, NATS's subject rules: tokens separated by `.`; in a pattern `*` matches exactly one token
 * and `>` (last token only) one or more. Names starting with `$` are the broker's own (`$dlq.orders`); a pattern
 * matches them only when its first token is spelled out (as NATS keeps `$SYS` out of `>`).
 */
import { ErrorCodes, PubsubError } from '../core/errors.ts';

/** Longest topic or pattern accepted (bytes of UTF-8). */
export const MAX_SUBJECT_LENGTH = 255;
const TOKEN = /^[\p{L}\p{N}_\-$:@#+=~]+$/u;

function invalid(what: string, subject: string, why: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_INVALID, `invalid ${what} ${JSON.stringify(subject.slice(0, 80))}: ${why}`);
}

function checkLength(what: string, subject: string): string[] {
  if (typeof subject !== 'string' || subject.length === 0) throw invalid(what, String(subject), 'empty');
  if (Buffer.byteLength(subject) > MAX_SUBJECT_LENGTH) throw invalid(what, subject, `longer than ${MAX_SUBJECT_LENGTH} bytes`);
  return subject.split('.');
}

/** Throws WL_ERR_PUBSUB_INVALID unless `topic` is a publishable topic name (no wildcards, no empty token). */
export function checkTopic(topic: string): string {
  for (const t of checkLength('topic', topic)) {
    if (t === '*' || t === '>') throw invalid('topic', topic, 'wildcards are for subscriptions');
    if (!TOKEN.test(t)) throw invalid('topic', topic, t === '' ? 'empty token' : `bad token ${JSON.stringify(t)}`);
  }
  return topic;
}

/** Throws WL_ERR_PUBSUB_INVALID unless `pattern` is a topic or a pattern with `*` tokens and a final `>`. */
export function checkPattern(pattern: string): string {
  const tokens = checkLength('pattern', pattern);
  tokens.forEach((t, i) => {
    if (t === '*') return;
    if (t === '>') {
      if (i !== tokens.length - 1) throw invalid('pattern', pattern, "'>' must be the last token");
      return;
    }
    if (!TOKEN.test(t)) throw invalid('pattern', pattern, t === '' ? 'empty token' : `bad token ${JSON.stringify(t)}`);
  });
  return pattern;
}

export function hasWildcard(pattern: string): boolean {
  return pattern.split('.').some((t) => t === '*' || t === '>');
}

/** Whether `topic` matches `pattern` (both assumed checked). */
export function matches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  if (t[0]!.startsWith('$') && (p[0] === '*' || p[0] === '>')) return false;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

/** Whether every topic `inner` can match is also matched by `outer` (ACLs: may a subscription to `inner` be allowed). */
export function covers(outer: string, inner: string): boolean {
  const o = outer.split('.');
  const n = inner.split('.');
  for (let i = 0; i < o.length; i++) {
    if (o[i] === '>') return n.length > i;
    if (i >= n.length) return false;
    if (n[i] === '>') return false;
    if (o[i] !== '*' && (n[i] === '*' || o[i] !== n[i])) return false;
  }
  return o.length === n.length;
}

/** The partition a key goes to: FNV-1a 32 of its UTF-8 bytes, modulo the partition count (stable across restarts). */
export function partitionForKey(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(key)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}
