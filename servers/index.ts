import type { ServiceEntry } from '../core/registry.ts';
import { join } from 'node:path';
import { dataDir } from '../core/paths.ts';
import { startFtpServer, type RunningFtpServer } from './ftp/index.ts';
import { startTcpServer } from './tcp.ts';
import { startUdpServer } from './udp.ts';

const py = (code: string): string => `python3 -c "${code}"`;

/**
 * Every server `wirelab up` starts, in table order. A new protocol adds its entries here
 * (port = port base + the service's IANA port).
 */
export const SERVICES: ServiceEntry[] = [
  {
    name: 'tcp-echo',
    proto: 'tcp',
    wellKnownPort: 7,
    describe: 'echo (RFC 862), line framing',
    start: (o) => startTcpServer({ ...o, mode: 'echo', framing: 'line' }),
    tryWith: (s) => `nc ${s.host} ${s.port}`,
  },
  {
    name: 'udp-echo',
    proto: 'udp',
    wellKnownPort: 7,
    describe: 'echo (RFC 862), every datagram back to its sender',
    start: (o) => startUdpServer(o),
    tryWith: (s) => `nc -u ${s.host} ${s.port}`,
  },
  {
    name: 'tcp-discard',
    proto: 'tcp',
    wellKnownPort: 9,
    describe: 'discard (RFC 863): reads and drops everything',
    start: (o) => startTcpServer({ ...o, mode: 'discard' }),
    tryWith: (s) => `head -c 10000000 /dev/zero | nc -N ${s.host} ${s.port}`,
  },
  {
    name: 'tcp-chargen',
    proto: 'tcp',
    wellKnownPort: 19,
    describe: 'chargen (RFC 864): an endless stream of text lines',
    start: (o) => startTcpServer({ ...o, mode: 'chargen' }),
    tryWith: (s) =>
      py(`import socket; s=socket.create_connection(('${s.host}',${s.port})); print(s.recv(300).decode())`),
  },
  {
    name: 'ftp',
    proto: 'ftp',
    wellKnownPort: 21,
    describe: 'FTP (RFC 959) with AUTH TLS, EPSV/EPRT, MLSD; user demo / demo',
    start: (o) => startFtpServer(o),
    tryWith: (s) => `curl ftp://demo:demo@${s.host}:${s.port}/`,
    extra: (s) => ({ root: (s as RunningFtpServer).root }),
  },
  {
    name: 'ftps',
    proto: 'ftps',
    wellKnownPort: 990,
    describe: 'implicit FTPS: TLS from the first byte; user demo / demo',
    start: (o) => startFtpServer({ ...o, implicitTls: true }),
    tryWith: (s) => `curl --cacert ${join(dataDir(), 'tls', 'ca.pem')} ftps://demo:demo@localhost:${s.port}/`,
    extra: (s) => ({ root: (s as RunningFtpServer).root }),
  },
];
