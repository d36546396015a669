/**
 * wirelab's native pub/sub protocol: the message types (messages.ts), the JSON encoding for WebSocket text frames
 * (json.ts) and the length-prefixed binary encoding for TCP (binary.ts). README "The native protocol" documents it.
 */
import { parseClientBinary, parseServerBinary } from './pubsub/binary.ts';
import { parseClientJson, parseServerJson } from './pubsub/json.ts';
import type { ClientMessage, Parsed, ServerMessage } from './pubsub/messages.ts';

export * from './pubsub/messages.ts';
export { encodeJson, parseClientJson, parseServerJson } from './pubsub/json.ts';
export { COMPACT_CODES, COMPACT_VERSION, MsgEncoder, decodeCompactMsg, decodeCompactPub, decodeCompactPuback, encodeCompactPub, encodeCompactPuback } from './pubsub/compact.ts';
export { TYPE_CODES, createFrameDecoder, encodeBinary, encodeBinaryBody, parseClientBinary, parseServerBinary } from './pubsub/binary.ts';

/** Largest frame either side accepts unless configured: 1 MiB (a bigger one: WS close 1009, TCP an error then close). */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** Checks what a client sent: a JSON text (WebSocket text frame) or a binary frame body (TCP, WebSocket binary). */
export function parseClientMessage(frame: string | Buffer): Parsed<ClientMessage> {
  return typeof frame === 'string' ? parseClientJson(frame) : parseClientBinary(frame);
}

/** Checks what the server sent, in either encoding. */
export function parseServerMessage(frame: string | Buffer): Parsed<ServerMessage> {
  return typeof frame === 'string' ? parseServerJson(frame) : parseServerBinary(frame);
}

/** `wirelab up` puts the native TCP door on port base + 4222 (nats's port) and the WebSocket door on base + 4223. */
export const PUBSUB_TCP_PORT = 4222;
export const PUBSUB_WS_PORT = 4223;
