import pc from 'picocolors';
import { hexDump } from './hex.ts';
import type { TraceEvent, TraceSink } from './types.ts';

export interface PrettySinkOptions {
  /** Where lines go. Default process.stderr (stdout stays clean for `--json`). */
  stream?: NodeJS.WritableStream;
  /** Colours on or off. Default: on when the stream is a TTY and NO_COLOR is unset. */
  color?: boolean;
  /** Hex-dump each event's payload under its line. Default false. */
  hex?: boolean;
  /** Bytes shown per hex dump. Default 256. */
  hexMaxBytes?: number;
}

const ARROWS = { '>': '→', '<': '←', '*': '•' } as const;
const ROLES = { client: 'C', server: 'S' } as const;

/**
 * One line per command, frame or datagram: ms since start, connection id, which end traced it (C client, S server,
 * with the client's port: both ends of one connection show the same one), direction, kind, summary. The raw `bytes`
 * events of socket taps are shown only with `hex`.
 */
export class PrettySink implements TraceSink {
  readonly #stream: NodeJS.WritableStream;
  readonly #c: ReturnType<typeof pc.createColors>;
  readonly #hex: boolean;
  readonly #hexMax: number;
  readonly wantsWire: boolean;
  /** A line shows the summary only: no call site needs to build header lists or HTTP exchanges for it. */
  readonly wantsDetail = false;

  constructor(options: PrettySinkOptions = {}) {
    this.#stream = options.stream ?? process.stderr;
    const tty = (this.#stream as { isTTY?: boolean }).isTTY === true;
    this.#c = pc.createColors(options.color ?? (tty && !process.env.NO_COLOR));
    this.#hex = options.hex ?? false;
    this.#hexMax = options.hexMaxBytes ?? 256;
    this.wantsWire = this.#hex;
  }

  format(e: TraceEvent): string {
    const c = this.#c;
    const t = c.dim(`${e.t.toFixed(3).padStart(10)}ms`);
    const colour = e.dir === '>' ? c.cyan : e.dir === '<' ? c.magenta : c.yellow;
    const arrow = colour(ARROWS[e.dir]);
    const size = e.bytes === undefined ? '' : c.dim(` (${e.bytes} B)`);
    const port = e.conv ? e.conv.slice(e.conv.lastIndexOf(':', e.conv.indexOf('>')) + 1, e.conv.indexOf('>')) : '';
    const role = e.role ? ' ' + c.dim(`${ROLES[e.role]}:${port}`.padEnd(7)) : '';
    let line = `${t} ${c.bold(e.cid.padEnd(10))}${role} ${arrow} ${colour(e.kind.padEnd(10))} ${e.summary}${size}`;
    if (this.#hex && e.data && e.data.byteLength > 0) {
      line += '\n' + hexDump(e.data, this.#hexMax).map((l) => c.dim(`${' '.repeat(14)}${l}`)).join('\n');
    }
    return line;
  }

  write(e: TraceEvent): void {
    if (e.kind === 'bytes' && !this.#hex) return;
    this.#stream.write(this.format(e) + '\n');
  }
}
