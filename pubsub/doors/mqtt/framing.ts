/**
 * Cuts the byte stream into MQTT packets and hands each to the `mqtt-packet` parser (the codec is the package's; this
 * file only reads the fixed header, so a packet past `maxPacketBytes` is refused from its first five bytes, before
 * anything of it is buffered, and a remaining length longer than four bytes is reported as such).
 */
import './quiet-debug.ts'; // before mqtt-packet: its disabled debug() calls become no-ops
import mqttPacket, { type Packet } from 'mqtt-packet';

export type FramingError =
  | { kind: 'malformed-length'; message: string }
  | { kind: 'too-large'; size: number; message: string }
  | { kind: 'codec'; message: string; packetType: number; head: Buffer };

export interface PacketReaderEvents {
  packet(packet: Packet): void;
  error(error: FramingError): void;
}

/** The fixed header's packet type names, for traces of packets the codec refused. */
export const PACKET_TYPES = ['reserved', 'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'auth'];

/** How many bytes of each packet's body are kept for the error report (enough for CONNECT's protocol level). */
const HEAD_BYTES = 16;

export class PacketReader {
  readonly #parser = mqttPacket.parser({});
  readonly #maxPacketBytes: number;
  readonly #events: PacketReaderEvents;
  #state: 'header' | 'length' | 'body' = 'header';
  #type = 0;
  #length = 0;
  #lengthBytes = 0;
  #multiplier = 1;
  #remaining = 0;
  #head: number[] = [];
  #failed = false;
  /** Bytes read in all. */
  bytes = 0;

  constructor(maxPacketBytes: number, events: PacketReaderEvents) {
    this.#maxPacketBytes = maxPacketBytes;
    this.#events = events;
    this.#parser.on('packet', (p: Packet) => this.#events.packet(p));
    this.#parser.on('error', (err: Error) => this.#fail({ kind: 'codec', message: err.message, packetType: this.#type, head: Buffer.from(this.#head) }));
  }

  /** The protocol level the parser uses for properties (set after CONNECT: the parser learns it from CONNECT). */
  get failed(): boolean {
    return this.#failed;
  }

  #fail(e: FramingError): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#events.error(e);
  }

  push(chunk: Buffer): void {
    if (this.#failed) return;
    this.bytes += chunk.length;
    let start = 0;
    let i = 0;
    while (i < chunk.length && !this.#failed) {
      if (this.#state === 'header') {
        this.#type = chunk[i]! >> 4;
        this.#length = 0;
        this.#lengthBytes = 0;
        this.#multiplier = 1;
        this.#head = [];
        this.#state = 'length';
        i++;
      } else if (this.#state === 'length') {
        const b = chunk[i]!;
        this.#length += (b & 0x7f) * this.#multiplier;
        this.#multiplier *= 128;
        this.#lengthBytes++;
        i++;
        if (b & 0x80) {
          if (this.#lengthBytes === 4) {
            return this.#fail({ kind: 'malformed-length', message: 'remaining length longer than 4 bytes' });
          }
          continue;
        }
        const size = 1 + this.#lengthBytes + this.#length;
        if (size > this.#maxPacketBytes) {
          return this.#fail({ kind: 'too-large', size, message: `packet of ${size} bytes > maxPacketBytes ${this.#maxPacketBytes}` });
        }
        this.#remaining = this.#length;
        this.#state = 'body';
        if (this.#remaining === 0) {
          this.#parser.parse(chunk.subarray(start, i));
          start = i;
          this.#state = 'header';
        }
      } else {
        const take = Math.min(this.#remaining, chunk.length - i);
        if (this.#head.length < HEAD_BYTES) this.#head.push(...chunk.subarray(i, i + Math.min(take, HEAD_BYTES - this.#head.length)));
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) {
          this.#parser.parse(chunk.subarray(start, i));
          start = i;
          this.#state = 'header';
        }
      }
    }
    // A packet still incomplete: what has arrived of it goes to the parser, which keeps it (bounded by the check above).
    if (!this.#failed && start < chunk.length) this.#parser.parse(chunk.subarray(start));
  }
}

/** The CONNECT protocol level in a refused CONNECT's first body bytes (name length, name, level), or undefined. */
export function connectLevel(head: Buffer): number | undefined {
  if (head.length < 2) return undefined;
  const nameLength = head.readUInt16BE(0);
  return head.length > 2 + nameLength ? head[2 + nameLength] : undefined;
}

export function encodePacket(packet: Packet, protocolVersion: number): Buffer {
  return mqttPacket.generate(packet, { protocolVersion } as Parameters<typeof mqttPacket.generate>[1]);
}
