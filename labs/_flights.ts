import type { LabContext } from '../core/lab/index.ts';
import { startTcpRelay } from '../core/relay.ts';

/** TLS record content types (RFC 8446 5.1): a flight of the handshake starts with one of these. */
const CHANGE_CIPHER_SPEC = 0x14;
const HANDSHAKE = 0x16;

interface Chunk {
  conn: number;
  dir: '>' | '<';
  first: number;
}

/**
 * A relay (no added delay) in front of a server that keeps the first byte of every chunk each way, so a lab can count
 * the TLS handshake's round trips from what crossed the wire instead of assuming them from the negotiated version.
 */
export interface FlightTap {
  /** Connect here instead of to the server. */
  port: number;
  /** A position in the record of chunks: pass it to tlsServerFlightsSince. */
  mark(): number;
  /**
   * Server-to-client flights of the TLS handshake since `mark` on the newest connection: runs of server chunks with
   * nothing from the client in between whose first record is a handshake or ChangeCipherSpec record. Plaintext
   * replies (ASCII) and encrypted application data (type 23, including TLS 1.3's session tickets) are not counted.
   * Each such flight answers one the client sent: one round trip each.
   */
  tlsServerFlightsSince(mark: number): number;
}

export async function startFlightTap(ctx: LabContext, targetPort: number): Promise<FlightTap> {
  const chunks: Chunk[] = [];
  const relay = await ctx.start(
    startTcpRelay({ target: { port: targetPort }, tracer: ctx.tracer, onForward: (dir, chunk, conn) => chunks.push({ conn, dir, first: chunk[0] ?? -1 }) }),
  );
  return {
    port: relay.port,
    mark: () => chunks.length,
    tlsServerFlightsSince(mark) {
      const since = chunks.slice(mark);
      const conn = Math.max(0, ...since.map((c) => c.conn));
      let flights = 0;
      let last: '>' | '<' | undefined;
      for (const c of since) {
        if (c.conn !== conn) continue;
        if (c.dir === '<' && last !== '<' && (c.first === HANDSHAKE || c.first === CHANGE_CIPHER_SPEC)) flights++;
        last = c.dir;
      }
      return flights;
    },
  };
}
