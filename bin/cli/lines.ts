/**
 * Cuts stdin into lines without holding more than `maxLineBytes` of one: a longer line is reported once (`onTooLong`)
 * and skipped up to its newline, so a stream without newlines cannot grow memory.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #held = 0;
  #skipping = false;

  constructor(
    readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onTooLong: (bytes: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      this.#take(chunk.subarray(start, nl));
      this.#endLine();
      start = nl + 1;
    }
    if (start < chunk.length) this.#take(chunk.subarray(start));
  }

  /** The last line, if stdin ended without a newline. */
  end(): void {
    if (this.#held > 0 || this.#skipping) this.#endLine();
  }

  #take(piece: Buffer): void {
    if (this.#skipping) {
      this.#held += piece.length;
      return;
    }
    this.#parts.push(piece);
    this.#held += piece.length;
    if (this.#held > this.maxLineBytes + 1) {
      this.#parts = [];
      this.#skipping = true;
    }
  }

  #endLine(): void {
    const held = this.#held;
    const skipped = this.#skipping;
    let line = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#held = 0;
    this.#skipping = false;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (skipped || line.length > this.maxLineBytes) this.onTooLong(held);
    else this.onLine(line.toString('utf8'));
  }
}
