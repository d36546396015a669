import { close as closeFd, open, write as writeFd } from 'node:fs';
import type { TraceEvent, TraceSink } from './types.ts';

export interface JsonlSinkOptions {
  /** Payload bytes written per event (as hex in `data`); the rest is cut and `dataTruncated` set. Default 4096. */
  maxPayloadBytes?: number;
  /**
   * Bytes of lines waiting for the file (a disk slower than the traffic); past it events are counted, not written, and
   * one `trace` / `dropped` event says how many once the file catches up. Default 64 MiB.
   */
  maxPendingBytes?: number;
  /**
   * Summaries only: each event without its payload and `meta` (header lists, bodies, HAR exchanges), and none of those
   * built for this sink, so tracing costs a fraction of a full file, which in turn cannot become a pcapng or HAR
   * (`wirelab trace convert` refuses it). The first line says so. Default false.
   */
  lean?: boolean;
}

export const JSONL_SINK_DEFAULTS = Object.freeze({ maxPayloadBytes: 4096, maxPendingBytes: 64 * 1024 * 1024, lean: false });

/** The first line's kind in a file written with `lean`. */
export const LEAN_KIND = 'lean';

/** Lines are encoded into buffers of this size and written when one is full, or FLUSH_MS after its first line. */
const BATCH_BYTES = 256 * 1024;
const FLUSH_MS = 20;
/** Written buffers kept for reuse (allocating a large Buffer per batch cost more than encoding the lines into it). */
const SPARE_BUFFERS = 2;

/**
 * One JSON object per line (absolute `ts`, `role`, `conv`, payload hex in `data`), for jq, scripts and `wirelab trace`.
 * Lines are UTF-8 encoded straight into a reused buffer and written with one fs.write per batch (a write per event, or
 * a string batch turned into a new Buffer, cost more than building the event); flushed on close.
 */
export class JsonlSink implements TraceSink {
  /** The bytes on the wire go to the file too (unless lean), so `wirelab trace convert` can write a pcapng from it. */
  readonly wantsWire: boolean;
  /** Lean: summaries are all this sink keeps (false lets the servers skip building details). */
  readonly wantsDetail: boolean;
  /** Events not written because the file fell maxPendingBytes behind. */
  dropped = 0;
  readonly #maxPayload: number;
  readonly #maxPending: number;
  readonly #lean: boolean;
  #fd: number | undefined;
  #error: Error | undefined;
  readonly #opened: Promise<void>;
  #buf: Buffer = Buffer.allocUnsafeSlow(BATCH_BYTES);
  #used = 0;
  readonly #spare: Buffer[] = [];
  /** Filled buffers waiting for the file, in order; the first is being written. */
  readonly #queue: Array<{ buf: Buffer; len: number }> = [];
  #pending = 0;
  #writing = false;
  #timer: NodeJS.Timeout | undefined;
  #droppedUnreported = 0;
  #drained: (() => void) | undefined;

  constructor(path: string, options: JsonlSinkOptions = {}) {
    this.#maxPayload = options.maxPayloadBytes ?? JSONL_SINK_DEFAULTS.maxPayloadBytes;
    this.#maxPending = options.maxPendingBytes ?? JSONL_SINK_DEFAULTS.maxPendingBytes;
    const lean = options.lean ?? JSONL_SINK_DEFAULTS.lean;
    this.#lean = lean;
    this.wantsWire = !lean;
    this.wantsDetail = !lean;
    if (lean) {
      const line = { t: 0, ts: Date.now(), proto: 'trace', cid: 'trace', dir: '*', kind: LEAN_KIND, summary: 'summaries only (--trace-lean): no wire bytes, header lists, bodies or HAR exchanges' };
      this.#append(JSON.stringify(line) + '\n');
    }
    // An open or write error (no such dir, disk full) surfaces on close; until then the trace must not end the process.
    this.#opened = new Promise((resolve) =>
      open(path, 'w', (err, fd) => {
        if (err) this.#error = err;
        else this.#fd = fd;
        resolve();
        this.#next();
      }),
    );
  }

  write(event: TraceEvent): void {
    if (this.#pending + this.#used > this.#maxPending) {
      this.dropped++;
      this.#droppedUnreported++;
      return;
    }
    if (this.#droppedUnreported > 0) {
      const n = this.#droppedUnreported;
      this.#droppedUnreported = 0;
      this.#append(JSON.stringify({ t: event.t, ts: event.ts, proto: 'trace', cid: 'trace', dir: '*', kind: 'dropped', summary: `${n} events not written: the file fell maxPendingBytes=${this.#maxPending} behind` }) + '\n');
    }
    this.#append(this.#line(event));
  }

  #line(event: TraceEvent): string {
    // Lean: the event without its payload and details, whatever other sinks of the tracer made it build.
    if (this.#lean) {
      const { data: _bytes, meta: _meta, ...rest } = event;
      return JSON.stringify(rest) + '\n';
    }
    const data = event.data;
    // Without a payload the event is written as it is (no copy); with one, hex in place of the bytes.
    if (!data) return JSON.stringify(event) + '\n';
    const { data: _bytes, ...rest } = event;
    const line: Record<string, unknown> = rest;
    line.data = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, this.#maxPayload)).toString('hex');
    if (data.byteLength > this.#maxPayload) line.dataTruncated = true;
    return JSON.stringify(line) + '\n';
  }

  #append(line: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: a line that may not fit starts a new buffer.
    if (line.length * 3 > this.#buf.length - this.#used) {
      this.#flush();
      if (line.length * 3 > this.#buf.length) this.#buf = Buffer.allocUnsafeSlow(line.length * 3);
    }
    this.#used += this.#buf.write(line, this.#used);
    // Not unref'd: a process that ends without close() still writes its last lines (as a WriteStream would).
    if (this.#timer === undefined) this.#timer = setTimeout(this.#flush, FLUSH_MS);
  }

  readonly #flush = (): void => {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#used === 0) return;
    this.#queue.push({ buf: this.#buf, len: this.#used });
    this.#pending += this.#used;
    this.#buf = this.#spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    this.#used = 0;
    this.#next();
  };

  /** Writes the first queued buffer (a short write goes on from where it stopped), then the next. */
  #next(from = 0): void {
    if (this.#fd === undefined || (this.#writing && from === 0)) return;
    const head = this.#queue[0];
    if (!head || this.#error) {
      this.#writing = false;
      this.#drained?.();
      return;
    }
    this.#writing = true;
    writeFd(this.#fd, head.buf, from, head.len - from, null, (err, n) => {
      if (err) {
        this.#error = err;
        this.#writing = false;
        return this.#drained?.();
      }
      if (from + n < head.len) return this.#next(from + n);
      this.#queue.shift();
      this.#pending -= head.len;
      if (head.buf.length === BATCH_BYTES && this.#spare.length < SPARE_BUFFERS) this.#spare.push(head.buf);
      this.#writing = false;
      this.#next();
    });
  }

  async close(): Promise<void> {
    this.#flush();
    await this.#opened;
    if (this.#queue.length > 0 && !this.#error) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (this.#fd !== undefined) {
      const fd = this.#fd;
      this.#fd = undefined;
      await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
    }
    if (this.#error) throw this.#error;
  }
}
