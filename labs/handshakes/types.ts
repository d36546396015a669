import type { LabContext } from '../../core/lab/index.ts';

/**
 * One row of the `handshakes` lab: what it takes before the first byte of application data can flow.
 * Each area adds a file labs/handshakes/<area>.ts whose default export returns its rows; the lab prints them in one
 * table. The row's own code checks its claims with ctx.claim (round trips counted, not assumed).
 */
export interface HandshakeRow {
  /** e.g. "TCP connect", "TLS 1.3 full", "HTTP/1.1 GET (new connection)", "SMTP greeting to 250". */
  handshake: string;
  /** Round trips before application data, as counted (flights observed, or the commands and replies exchanged). */
  roundTrips: number;
  /** Time it took in this run, in milliseconds (with the added delay, if the row used one). */
  ms: number;
  /** One-way delay a relay added to each chunk for this row (0 or absent: plain loopback). */
  addedDelayMs?: number;
  /** The steps in order, short: "SYN → SYN-ACK → ACK" or "220 ← EHLO → 250". */
  steps: string;
}

export type HandshakeRows = (ctx: LabContext) => Promise<HandshakeRow[]>;
