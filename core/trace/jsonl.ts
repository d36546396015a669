import { createWriteStream, type WriteStream } from 'node:fs';
import type { TraceEvent, TraceSink } from './types.ts';

export interface JsonlSinkOptions {
  /** Payload bytes written per event (as hex in `data`); the rest is cut and `dataTruncated` set. Default 4096. */
  maxPayloadBytes?: number;
  /**
   * Bytes of lines waiting for the file (a disk slower than the traffic); past it events are counted, not written, and
   * one `trace` / `dropped` event says how many once the file catches up. Default 64 MiB.
   */
  maxPendingBytes?: number;
}

export const JSONL_SINK_DEFAULTS = Object.freeze({ maxPayloadBytes: 4096, maxPendingBytes: 64 * 1024 * 1024 });

/** Lines are written in batches of about this many characters (or once per turn of the event loop, if fewer). */
const BATCH_CHARS = 64 * 1024;

/**
 * One JSON object per line (absolute `ts`, `role`, `conv`, payload hex in `data`), for jq, scripts and `wirelab trace`.
 * Lines are gathered and written once per turn of the event loop (one write for many events, not one each: a write per
 * event cost more than building the event), and flushed on close.
 */
export class JsonlSink implements TraceSink {
  /** The bytes on the wire go to the file too, so `wirelab trace convert` can write a pcapng from it. */
  readonly wantsWire = true;
  /** Events not written because the file fell maxPendingBytes behind. */
  dropped = 0;
  readonly #out: WriteStream;
  readonly #maxPayload: number;
  readonly #maxPending: number;
  #batch = '';
  #scheduled = false;
  #droppedUnreported = 0;

  constructor(path: string, options: JsonlSinkOptions = {}) {
    this.#out = createWriteStream(path, { flags: 'w' });
    // A write error (disk full) surfaces on close; until then the trace must not end the process.
    this.#out.on('error', () => undefined);
    this.#maxPayload = options.maxPayloadBytes ?? JSONL_SINK_DEFAULTS.maxPayloadBytes;
    this.#maxPending = options.maxPendingBytes ?? JSONL_SINK_DEFAULTS.maxPendingBytes;
  }

  write(event: TraceEvent): void {
    if (this.#out.writableLength > this.#maxPending) {
      this.dropped++;
      this.#droppedUnreported++;
      return;
    }
    if (this.#droppedUnreported > 0) {
      const n = this.#droppedUnreported;
      this.#droppedUnreported = 0;
      this.#batch += JSON.stringify({ t: event.t, ts: event.ts, proto: 'trace', cid: 'trace', dir: '*', kind: 'dropped', summary: `${n} events not written: the file fell maxPendingBytes=${this.#maxPending} behind` }) + '\n';
    }
    this.#batch += this.#line(event);
    if (this.#batch.length >= BATCH_CHARS) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  #line(event: TraceEvent): string {
    const data = event.data;
    // Without a payload the event is written as it is (no copy); with one, hex in place of the bytes.
    if (!data) return JSON.stringify(event) + '\n';
    const { data: _bytes, ...rest } = event;
    const line: Record<string, unknown> = rest;
    line.data = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, this.#maxPayload)).toString('hex');
    if (data.byteLength > this.#maxPayload) line.dataTruncated = true;
    return JSON.stringify(line) + '\n';
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = '';
    this.#out.write(batch);
  };

  close(): Promise<void> {
    this.#flush();
    return new Promise((resolve, reject) => {
      this.#out.once('error', reject);
      this.#out.end(resolve);
    });
  }
}
