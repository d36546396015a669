/**
 * How wirelab's words land in JetStream's (README "Engines: JetStream"): one stream per topic partition, named
 * `<prefix>-<topic>-P<p>`, holding the one subject `<subjectPrefix>.<topic>.<p>`; a record's key, expiry and headers
 * travel as NATS headers; its offset is the stream sequence minus one.
 */
import { headers as natsHeaders, type MsgHdrs } from 'nats';
import type { Headers, LogRecord } from '../../log/types.ts';

/** A stream or consumer name for any topic / group: [A-Za-z0-9-] kept, '.' -> '_', anything else `=XX` per UTF-8 byte. */
export function encodeName(s: string): string {
  let out = '';
  for (const ch of s) {
    if (/[A-Za-z0-9-]/.test(ch)) out += ch;
    else if (ch === '.') out += '_';
    else for (const b of Buffer.from(ch)) out += '=' + b.toString(16).padStart(2, '0').toUpperCase();
  }
  return out;
}

export function streamName(prefix: string, topic: string, partition: number): string {
  return `${prefix}-${encodeName(topic)}-P${partition}`;
}

export function subjectFor(subjectPrefix: string, topic: string, partition: number): string {
  return `${subjectPrefix}.${topic}.${partition}`;
}

/** What the stream's description holds, so any process (another `wirelab up`) finds topics from the streams alone. */
export interface StreamMeta {
  wirelab: 1;
  topic: string;
  partition: number;
  partitions: number;
  duplicateWindowMs: number;
}

export function parseMeta(description: string | undefined): StreamMeta | undefined {
  if (!description || !description.startsWith('{')) return undefined;
  try {
    const m = JSON.parse(description) as StreamMeta;
    return m.wirelab === 1 && typeof m.topic === 'string' && Number.isInteger(m.partition) ? m : undefined;
  } catch {
    return undefined;
  }
}

/** NATS headers wirelab itself writes (a user header of the same name travels inside HEADERS_JSON instead). */
export const H = {
  MSG_ID: 'Nats-Msg-Id',
  KEY: 'Wl-Key',
  EXPIRES: 'Wl-Expires',
  /** Set when the msg id was made by the engine (so retries dedup) rather than given by the producer. */
  GENERATED_ID: 'Wl-Gen-Id',
  /** The producer's msg id on a topic whose duplicate window is 0 (no dedup: Nats-Msg-Id would dedup). */
  PLAIN_MSG_ID: 'Wl-Msg-Id',
  /** The user's headers as JSON, used when one of them is no valid NATS header (name or value). */
  HEADERS_JSON: 'Wl-Headers',
} as const;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RESERVED = /^(nats-|wl-)/i;

export interface EncodeInput {
  headers?: Headers;
  key?: string;
  msgId?: string;
  generatedId?: boolean;
  /** False on a topic with duplicateWindowMs 0: the msg id is kept but not used for dedup. */
  dedup?: boolean;
  expiresAt?: number;
}

export function encodeHeaders(input: EncodeInput): MsgHdrs {
  const h = natsHeaders();
  const user = input.headers ?? {};
  const plain = Object.entries(user).every(([k, v]) => TOKEN.test(k) && !RESERVED.test(k) && !/[\r\n]/.test(v));
  if (plain) for (const [k, v] of Object.entries(user)) h.set(k, v);
  else h.set(H.HEADERS_JSON, Buffer.from(JSON.stringify(user)).toString('base64'));
  if (input.key !== undefined) h.set(H.KEY, Buffer.from(input.key).toString('base64'));
  if (input.msgId !== undefined) h.set(input.dedup === false ? H.PLAIN_MSG_ID : H.MSG_ID, input.msgId);
  if (input.generatedId) h.set(H.GENERATED_ID, '1');
  if (input.expiresAt !== undefined) h.set(H.EXPIRES, String(input.expiresAt));
  return h;
}

export function decodeRecord(seq: number, timestamp: number, data: Uint8Array, h: MsgHdrs | undefined): LogRecord {
  const record: LogRecord = { offset: seq - 1, timestamp, payload: Buffer.from(data.buffer, data.byteOffset, data.byteLength), headers: {} };
  if (!h) return record;
  for (const [k, values] of h) {
    if (RESERVED.test(k)) continue;
    record.headers[k] = values[values.length - 1] ?? '';
  }
  const json = h.get(H.HEADERS_JSON);
  if (json) record.headers = JSON.parse(Buffer.from(json, 'base64').toString()) as Headers;
  const key = h.get(H.KEY);
  if (key) record.key = Buffer.from(key, 'base64').toString();
  const id = h.get(H.MSG_ID) || h.get(H.PLAIN_MSG_ID);
  if (id && !h.has(H.GENERATED_ID)) record.msgId = id;
  const exp = h.get(H.EXPIRES);
  if (exp) record.expiresAt = Number(exp);
  return record;
}

/** Stream sequence -> offset and back (offsets count from 0 per partition, sequences from 1 per stream). */
export const seqToOffset = (seq: number): number => seq - 1;
export const offsetToSeq = (offset: number): number => offset + 1;

export const msToNanos = (ms: number): number => Math.round(ms * 1_000_000);
