/**
 * The JSON encoding (WebSocket text frames): one message per frame, a JSON object with a string `type`. A payload is
 * UTF-8 text in `payload`, or base64 with `"base64": true` when its bytes are not valid UTF-8.
 */
import { isUtf8 } from 'node:buffer';
import { checkClientFields, checkServerFields, type ClientMessage, type Parsed, type PubsubMessage, type ServerMessage } from './messages.ts';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The text frame carrying `message`. */
export function encodeJson(message: PubsubMessage): string {
  if (!('payload' in message)) return JSON.stringify(message);
  const { payload, ...rest } = message;
  return isUtf8(payload)
    ? JSON.stringify({ ...rest, payload: payload.toString('utf8') })
    : JSON.stringify({ ...rest, payload: payload.toString('base64'), base64: true });
}

function decode(text: string): { ok: true; value: unknown } | { ok: false; problem: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: true, value: v };
  const o = v as Record<string, unknown>;
  if (o.payload === undefined || o.payload === null) return { ok: true, value: o };
  if (typeof o.payload !== 'string') return { ok: false, problem: '"payload" must be a string (UTF-8 text, or base64 with "base64": true)' };
  if (o.base64 === true) {
    if (o.payload.length % 4 !== 0 || !BASE64.test(o.payload)) return { ok: false, problem: '"payload" is not base64' };
    return { ok: true, value: { ...o, payload: Buffer.from(o.payload, 'base64') } };
  }
  if (o.base64 !== undefined && o.base64 !== false) return { ok: false, problem: '"base64" must be true or false' };
  return { ok: true, value: { ...o, payload: Buffer.from(o.payload, 'utf8') } };
}

function withId(v: unknown): { id?: number | string } {
  const id = typeof v === 'string' ? (() => { try { return (JSON.parse(v) as { id?: unknown }).id; } catch { return undefined; } })() : undefined;
  return typeof id === 'number' || typeof id === 'string' ? { id } : {};
}

/** Checks a text frame a client sent (the server's side). */
export function parseClientJson(text: string): Parsed<ClientMessage> {
  const d = decode(text);
  return d.ok ? checkClientFields(d.value) : { ok: false, problem: d.problem, ...withId(text) };
}

/** Checks a text frame the server sent (the client's side). */
export function parseServerJson(text: string): Parsed<ServerMessage> {
  const d = decode(text);
  return d.ok ? checkServerFields(d.value) : { ok: false, problem: d.problem };
}
