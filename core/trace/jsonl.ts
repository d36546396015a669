import { createWriteStream, type WriteStream } from 'node:fs';
import type { TraceEvent, TraceSink } from './types.ts';

export interface JsonlSinkOptions {
  /** Payload bytes written per event (as hex in `data`); the rest is cut and `dataTruncated` set. Default 4096. */
  maxPayloadBytes?: number;
}

/** One JSON object per line (absolute `ts`, `role`, `conv`, payload hex in `data`), for jq, scripts and `wirelab trace`. */
export class JsonlSink implements TraceSink {
  /** The bytes on the wire go to the file too, so `wirelab trace convert` can write a pcapng from it. */
  readonly wantsWire = true;
  readonly #out: WriteStream;
  readonly #maxPayload: number;

  constructor(path: string, options: JsonlSinkOptions = {}) {
    this.#out = createWriteStream(path, { flags: 'w' });
    this.#maxPayload = options.maxPayloadBytes ?? 4096;
  }

  write(event: TraceEvent): void {
    const { data, ...rest } = event;
    const line: Record<string, unknown> = { ...rest };
    if (data) {
      line.data = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, this.#maxPayload)).toString('hex');
      if (data.byteLength > this.#maxPayload) line.dataTruncated = true;
    }
    this.#out.write(JSON.stringify(line) + '\n');
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#out.once('error', reject);
      this.#out.end(resolve);
    });
  }
}
