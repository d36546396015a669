import { readFileSync } from 'node:fs';

/**
 * TCP segments the kernel has retransmitted (RetransSegs in /proc/net/snmp), for this network namespace: every
 * connection's, not only the test's, so a test's count is the difference over it (exact on an otherwise idle
 * loopback). Null off Linux or where the file cannot be read.
 */
export function retransmittedSegments(): number | null {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    const i = names.indexOf('RetransSegs');
    return i === -1 ? null : Number(values[i]);
  } catch {
    return null;
  }
}
