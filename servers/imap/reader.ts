/**
 * Cuts the client's byte stream into whole IMAP commands, literals included (RFC 3501 4.3, LITERAL+ RFC 7888). A line
 * ending in `{n}` announces n raw bytes: the reader asks the session to send a continuation request (`+`) for a
 * synchronizing literal, takes the bytes whatever they contain, and goes on with the rest of the command. Every input
 * has a limit; past one the reader reports what happened, so the session answers BAD instead of buffering forever.
 */
export interface ImapReaderLimits {
  /** Longest line (between literals). */
  maxLineLength: number;
  /** Largest single literal. */
  maxLiteralSize: number;
  /** Largest whole command (lines and literals together). */
  maxCommandSize: number;
}

export type ReaderEvent =
  | { type: 'command'; data: Buffer }
  /** A synchronizing literal was announced and is within the limits: send `+ ...` now. */
  | { type: 'continue'; size: number }
  /** A literal over the limit was refused; for a synchronizing one the client sends nothing more of the command. */
  | { type: 'too-big'; what: 'literal' | 'command'; size: number; sync: boolean; line: Buffer }
  /** A line over maxLineLength: the connection cannot be resynchronized and is closed. */
  | { type: 'line-too-long'; size: number };

const LITERAL_AT_END = /\{(\d{1,12})(\+?)\}$/;

export class ImapReader {
  #parts: Buffer[] = [];
  #size = 0;
  #line: Buffer[] = [];
  #lineSize = 0;
  #literalLeft = 0;
  /** Bytes of an over-limit non-synchronizing literal still to throw away. */
  #skip = 0;
  /** After a skipped literal, the rest of that command (up to its line end) is thrown away too. */
  #discardLine = false;
  #dead = false;

  constructor(readonly limits: ImapReaderLimits) {}

  /** Discards everything held (STARTTLS: nothing sent in clear before the handshake may count). */
  reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#line = [];
    this.#lineSize = 0;
    this.#literalLeft = 0;
    this.#skip = 0;
    this.#discardLine = false;
  }

  /** True while the reader is in the middle of a command (so a half-sent command can be reported). */
  get pending(): number {
    return this.#size + this.#lineSize;
  }

  push(chunk: Buffer): ReaderEvent[] {
    const out: ReaderEvent[] = [];
    let pos = 0;
    while (pos < chunk.length && !this.#dead) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - pos);
        this.#skip -= n;
        pos += n;
        continue;
      }
      if (this.#literalLeft > 0) {
        const n = Math.min(this.#literalLeft, chunk.length - pos);
        this.#parts.push(chunk.subarray(pos, pos + n));
        this.#size += n;
        this.#literalLeft -= n;
        pos += n;
        continue;
      }
      const nl = chunk.indexOf(0x0a, pos);
      const end = nl === -1 ? chunk.length : nl + 1;
      const piece = chunk.subarray(pos, end);
      this.#line.push(piece);
      this.#lineSize += piece.length;
      pos = end;
      if (this.#lineSize > this.limits.maxLineLength + 2) {
        this.#dead = true;
        out.push({ type: 'line-too-long', size: this.#lineSize });
        break;
      }
      if (nl === -1) break;
      const line = Buffer.concat(this.#line);
      this.#line = [];
      this.#lineSize = 0;
      if (this.#discardLine) {
        // The rest of a refused command; if it announces another literal, that one is skipped as well.
        const more = LITERAL_AT_END.exec(line.toString('latin1').replace(/\r?\n$/, ''));
        this.#discardLine = !!more;
        if (more) this.#skip = Number(more[1]);
        continue;
      }
      const text = line.toString('latin1').replace(/\r?\n$/, '');
      const lit = LITERAL_AT_END.exec(text);
      this.#parts.push(line);
      this.#size += line.length;
      if (!lit) {
        out.push({ type: 'command', data: Buffer.concat(this.#parts) });
        this.#parts = [];
        this.#size = 0;
        continue;
      }
      const size = Number(lit[1]);
      const sync = lit[2] !== '+';
      const what = size > this.limits.maxLiteralSize ? 'literal' : this.#size + size > this.limits.maxCommandSize ? 'command' : null;
      if (what) {
        out.push({ type: 'too-big', what, size, sync, line: Buffer.concat(this.#parts) });
        this.#parts = [];
        this.#size = 0;
        if (!sync) {
          this.#skip = size;
          this.#discardLine = true;
        }
        continue;
      }
      this.#literalLeft = size;
      if (sync) out.push({ type: 'continue', size });
    }
    return out;
  }
}
