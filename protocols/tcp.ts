// TCP connection vocabulary both ends use (servers/tcp and clients/tcp trace a connection's end the same way).

/** How a connection ended, as the side that saw it: FIN from the peer, RST, our idle timeout, or closed locally. */
export type EndReason = 'fin' | 'rst' | 'timeout' | 'local' | 'error';

/** A connection's end in words, as the side that saw it; `peer` names the other side. */
export function describeEnd(how: EndReason, peer: 'client' | 'server'): string {
  switch (how) {
    case 'fin':
      return `closed by ${peer} (FIN)`;
    case 'rst':
      return `reset by ${peer} (RST)`;
    case 'timeout':
      return 'closed on idle timeout';
    case 'local':
      return 'closed by this side';
    case 'error':
      return 'closed on error';
  }
}
