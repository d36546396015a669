/**
 * HTTP bodies as a trace event may carry them (for HAR): capped at a named limit and with secret fields redacted where
 * the event is made, like header lines (core/trace/redact.ts), so no exporter can leak what it never received.
 */
import { REDACTED } from '../trace/index.ts';

/** Bytes of one request or response body kept in a traced HTTP event (the rest is counted, not kept). */
export const TRACED_BODY_MAX_BYTES = 64 * 1024;

/** A body as traced: text (utf-8) or base64 when it is not text, its full size, and whether `text` was cut. */
export interface TracedBody {
  size: number;
  mimeType: string;
  text: string;
  encoding?: 'base64';
  truncated?: boolean;
}

/** Field names whose values are secrets in JSON and form bodies. */
const SECRET_FIELD = /^(pass(word|wd)?|secret|token|api[-_]?key|access[-_]?token|refresh[-_]?token|client[-_]?secret|(proxy-)?authorization|(set-)?cookies?)$/i;

function isTextual(mime: string): boolean {
  return /^text\/|json|xml|javascript|x-www-form-urlencoded|message\/http|event-stream/i.test(mime);
}

function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELD.test(k) ? REDACTED : redactJson(v);
    return out;
  }
  // An echo route puts the request body in a string field ("data"): its secrets are redacted there too.
  return typeof value === 'string' && /[=:]/.test(value) ? redactPatterns(value) : value;
}

function redactPatterns(text: string): string {
  return text
    .replace(/("([A-Za-z_-]+)"\s*:\s*)"(?:[^"\\]|\\.)*"/g, (m, pre: string, key: string) => (SECRET_FIELD.test(key) ? `${pre}"${REDACTED}"` : m))
    .replace(/(^|[&?\s])([A-Za-z_-]+)=([^&\s]*)/g, (m, pre: string, key: string) => (SECRET_FIELD.test(key) ? `${pre}${key}=${REDACTED}` : m));
}

/** The body text with secret fields replaced: JSON keys and form fields named like passwords and tokens. */
export function redactBodyText(text: string, mimeType: string): string {
  // Every secret found below is a `key=value` or a `"key": value`: a text with neither sign has none.
  if (!text.includes('=') && !text.includes(':')) return text;
  if (/json/i.test(mimeType) || /^\s*[[{]/.test(text)) {
    try {
      return JSON.stringify(redactJson(JSON.parse(text)));
    } catch {
      // Not parseable (cut, or not JSON after all): fall through to the key=value and "key": "value" patterns.
    }
  }
  return redactPatterns(text);
}

/** Collects body chunks up to a cap, counting all of them. */
export class BodyCollector {
  readonly #parts: Buffer[] = [];
  #kept = 0;
  size = 0;
  readonly #max: number;

  constructor(max = TRACED_BODY_MAX_BYTES) {
    this.#max = max;
  }

  add(chunk: Uint8Array | string | undefined | null): void {
    if (chunk === undefined || chunk === null) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.size += buf.length;
    if (this.#kept < this.#max) {
      const part = buf.subarray(0, this.#max - this.#kept);
      this.#parts.push(Buffer.from(part));
      this.#kept += part.length;
    }
  }

  /** The traced form, or undefined when there was no body. */
  traced(mimeType: string | undefined): TracedBody | undefined {
    if (this.size === 0) return undefined;
    return tracedBody(Buffer.concat(this.#parts, this.#kept), this.size, mimeType);
  }
}

/** A kept body (at most the cap) as traced: text redacted, or base64 for binary. */
export function tracedBody(kept: Buffer, size: number, mimeType: string | undefined): TracedBody {
  const mime = mimeType ?? 'application/octet-stream';
  const truncated = size > kept.length;
  const base = { size, mimeType: mime, ...(truncated ? { truncated: true } : {}) };
  if (isTextual(mime) || (!mimeType && !kept.includes(0))) return { ...base, text: redactBodyText(kept.toString('utf8'), mime) };
  return { ...base, text: kept.toString('base64'), encoding: 'base64' };
}
