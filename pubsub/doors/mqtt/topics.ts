/**
 * MQTT topic names and filters <-> the broker's subjects (pubsub/subjects.ts: `.`-separated tokens, `*` one token,
 * `>` the rest). The mapping is reversible for every MQTT topic, so a message published over MQTT reaches a native
 * subscriber under a predictable name and comes back out under the name it was published with:
 *
 * - a level separator `/` is a `.`;
 * - a level keeps the characters a subject token may hold (letters, digits, `_ - $ : @ # + =`) as they are; any other
 *   byte (a `.`, a space, `*`, `>`, `~`, `%`...) is written `~` and two hex digits of its UTF-8 byte (`a.b` -> `a~2eb`);
 * - an empty level (`a//b`, a leading or trailing `/`) is the token `~` alone (`/a` -> `~.a`);
 * - in a filter, a `+` level is `*` and a `#` level is `>`. MQTT's `a/#` also matches `a` itself, NATS's `a.>` does
 *   not, so `a/#` becomes two subjects: `a` and `a.>` (see `filterToPatterns`).
 *
 * A topic whose subject is longer than MAX_SUBJECT_LENGTH bytes is refused (PUBACK / SUBACK 0x90 / 0x8F on 5).
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { MAX_SUBJECT_LENGTH } from '../../subjects.ts';

const PLAIN = /^[\p{L}\p{N}_\-$:@#+=]$/u;
/** Topics made of ASCII token characters and non-empty levels map by swapping `/` and `.` (the fast path). */
const SIMPLE_TOPIC = /^[A-Za-z0-9_\-$:@=]+(\/[A-Za-z0-9_\-$:@=]+)*$/;

function invalid(what: string, value: string, why: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_INVALID, `invalid MQTT ${what} ${JSON.stringify(value.slice(0, 80))}: ${why}`);
}

function encodeLevel(level: string): string {
  if (level === '') return '~';
  let out = '';
  for (const ch of level) {
    if (PLAIN.test(ch)) out += ch;
    else for (const b of Buffer.from(ch)) out += '~' + b.toString(16).padStart(2, '0');
  }
  return out;
}

function decodeToken(token: string): string {
  if (token === '~') return '';
  if (!token.includes('~')) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; ) {
    const hex = token.slice(i + 1, i + 3);
    if (token[i] === '~' && /^[0-9a-f]{2}$/i.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else {
      // Not one of ours (a subject from another door): kept as it is.
      const cp = token.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...Buffer.from(ch));
      i += ch.length;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function checkSubjectLength(what: string, value: string, subject: string): string {
  if (Buffer.byteLength(subject) > MAX_SUBJECT_LENGTH) throw invalid(what, value, `longer than ${MAX_SUBJECT_LENGTH} bytes as a subject`);
  return subject;
}

/** An MQTT topic name (PUBLISH, will) -> a subject. Throws WL_ERR_PUBSUB_INVALID for wildcards, NUL or an empty name. */
export function topicToSubject(topic: string): string {
  // Every PUBLISH maps its topic: the ones seen recently (valid ones only) come from a bounded cache.
  let subject = subjectCache.get(topic);
  if (subject !== undefined) return subject;
  subject = mapTopic(topic);
  if (subjectCache.size >= TOPIC_CACHE_SIZE) subjectCache.clear();
  subjectCache.set(topic, subject);
  return subject;
}

const subjectCache = new Map<string, string>();

function mapTopic(topic: string): string {
  if (topic.length === 0) throw invalid('topic', topic, 'empty');
  if (topic.includes('+') || topic.includes('#')) throw invalid('topic', topic, 'wildcards are for subscriptions');
  if (topic.includes('\u0000')) throw invalid('topic', topic, 'NUL character');
  if (SIMPLE_TOPIC.test(topic)) return checkSubjectLength('topic', topic, topic.replaceAll('/', '.'));
  return checkSubjectLength('topic', topic, topic.split('/').map(encodeLevel).join('.'));
}

/** Subjects recently mapped to topic names (every delivery maps one): at most TOPIC_CACHE_SIZE, emptied when full. */
const TOPIC_CACHE_SIZE = 4096;
const topicCache = new Map<string, string>();

/** A subject -> the MQTT topic name a subscriber sees. */
export function subjectToTopic(subject: string): string {
  let topic = topicCache.get(subject);
  if (topic !== undefined) return topic;
  topic = subject.includes('~') ? subject.split('.').map(decodeToken).join('/') : subject.replaceAll('.', '/');
  if (topicCache.size >= TOPIC_CACHE_SIZE) topicCache.clear();
  topicCache.set(subject, topic);
  return topic;
}

/** Throws WL_ERR_PUBSUB_INVALID unless `filter` is a valid MQTT filter (`#` last and alone in its level, `+` alone). */
export function checkFilter(filter: string): string[] {
  if (filter.length === 0) throw invalid('filter', filter, 'empty');
  if (filter.includes('\u0000')) throw invalid('filter', filter, 'NUL character');
  const levels = filter.split('/');
  levels.forEach((l, i) => {
    if (l === '#') {
      if (i !== levels.length - 1) throw invalid('filter', filter, "'#' must be the last level");
    } else if (l.includes('#')) throw invalid('filter', filter, "'#' must be a level of its own");
    else if (l !== '+' && l.includes('+')) throw invalid('filter', filter, "'+' must be a level of its own");
  });
  return levels;
}

/**
 * An MQTT filter -> the broker patterns that together match what it matches: one, or two for `x/#` (`x` and `x.>`).
 * A bare `#` is `>` (every topic but the `$` ones, as in MQTT).
 */
export function filterToPatterns(filter: string): string[] {
  const levels = checkFilter(filter);
  const tokens = levels.map((l) => (l === '+' ? '*' : l === '#' ? '>' : encodeLevel(l)));
  const pattern = checkSubjectLength('filter', filter, tokens.join('.'));
  if (tokens.length > 1 && tokens[tokens.length - 1] === '>') return [tokens.slice(0, -1).join('.'), pattern];
  return [pattern];
}

export interface SharedFilter {
  group: string;
  filter: string;
}

/** `$share/<group>/<filter>` (MQTT 5 shared subscription) -> its parts; undefined for an ordinary filter. */
export function parseShared(filter: string): SharedFilter | undefined {
  if (!filter.startsWith('$share/')) return undefined;
  const rest = filter.slice('$share/'.length);
  const slash = rest.indexOf('/');
  const group = slash < 0 ? rest : rest.slice(0, slash);
  if (slash <= 0 || group.includes('+') || group.includes('#')) throw invalid('shared filter', filter, 'expected $share/<group>/<filter>');
  return { group, filter: rest.slice(slash + 1) };
}

/**
 * A token for a durable group name (the broker takes `[\w.-]{1,128}`): letters, digits and `_` as they are, any other
 * byte `-` and two hex digits; past 40 characters, `h` and 24 hex digits of its SHA-256 (unique enough, not readable).
 */
export function groupToken(name: string): string {
  const t = name.replace(/[^A-Za-z0-9_]/g, (ch) => [...Buffer.from(ch)].map((b) => '-' + b.toString(16).padStart(2, '0')).join(''));
  return t.length > 0 && t.length <= 40 ? t : 'h' + createHash('sha256').update(name).digest('hex').slice(0, 24);
}
