/**
 * Encode once, write to many. A QoS 0 PUBLISH of one message is the same bytes for every subscriber whose packet is
 * the same: same protocol version, retain and dup flags, and no property of its own (no topic alias, no subscription
 * identifier, no message expiry, which counts down). mosquitto and nats-server work this way. The first such
 * subscriber's packet is encoded by mqtt-packet as usual; the others are written the same Buffer.
 *
 * Entries are keyed by the message's payload Buffer: the engine hands every subscriber of a fan-out the same stored
 * record, so one Buffer is one message. The subject and the headers object are checked too (a retained copy may share
 * the payload Buffer but not the rest). A WeakMap: an entry goes when its record does.
 */

interface Entry {
  subject: string;
  headers: Record<string, string>;
  /** By variant: (version 5 ? 4 : 0) + (retain ? 2 : 0) + (dup ? 1 : 0). */
  packets: (Buffer | undefined)[];
}

export class SharedEncodings {
  readonly #entries = new WeakMap<Buffer, Entry>();
  /** Counters for tests: packets written from an encoding made for another subscriber, and encodings made. */
  readonly stats = { reused: 0, encoded: 0 };

  static variant(version: 4 | 5, retain: boolean, dup: boolean): number {
    return (version === 5 ? 4 : 0) + (retain ? 2 : 0) + (dup ? 1 : 0);
  }

  /** The bytes kept for this message and variant, or undefined (then encode and `keep` them). */
  find(payload: Buffer, subject: string, headers: Record<string, string>, variant: number): Buffer | undefined {
    const e = this.#entries.get(payload);
    if (e === undefined || e.subject !== subject || e.headers !== headers) return undefined;
    const have = e.packets[variant];
    if (have !== undefined) this.stats.reused++;
    return have;
  }

  keep(payload: Buffer, subject: string, headers: Record<string, string>, variant: number, bytes: Buffer): void {
    this.stats.encoded++;
    let e = this.#entries.get(payload);
    if (e === undefined || e.subject !== subject || e.headers !== headers) {
      e = { subject, headers, packets: [] };
      this.#entries.set(payload, e);
    }
    e.packets[variant] = bytes;
  }
}
