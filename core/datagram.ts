import { ErrorCodes, WirelabError } from './errors.ts';

/** The largest UDP payload over IPv4: 65,535 − 20 (IP header) − 8 (UDP header). */
export const MAX_UDP_PAYLOAD = 65_507;

/** Throws WL_ERR_DATAGRAM_TOO_LARGE when `total` bytes would not fit one UDP datagram; `what` says what was counted. */
export function checkDatagramSize(total: number, what: string): void {
  if (total > MAX_UDP_PAYLOAD) {
    throw new WirelabError(
      ErrorCodes.DATAGRAM_TOO_LARGE,
      `${what} is ${total} bytes; a UDP datagram over IPv4 carries at most ${MAX_UDP_PAYLOAD} bytes (65,535 − 20 IP − 8 UDP)`,
      { status: total },
    );
  }
}
