import type { ServiceEntry } from '../core/registry.ts';
import { startTcpServer } from './tcp.ts';
import { startUdpServer } from './udp.ts';
import { join } from 'node:path';
import { dataDir } from '../core/paths.ts';
import { startImapServer } from './imap/index.ts';
import { startPop3Server } from './pop3.ts';
import { startSmtpServer } from './smtp.ts';

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
];

// ---- Mail (issue 5): SMTP, IMAP and POP3 over one store under the data dir; the demo user is demo / demo. ----
const caFile = (): string => join(dataDir(), 'tls', 'ca.pem');
const sendWithCurl = (url: string, starttls: boolean): string =>
  `printf 'Subject: hello\\r\\n\\r\\nfrom curl\\r\\n' | curl ${starttls ? '--ssl-reqd ' : ''}--cacert ${caFile()} ${url} -u demo:demo --mail-from demo@localhost --mail-rcpt demo@localhost -T -`;

SERVICES.push(
  {
    name: 'smtp',
    proto: 'smtp',
    wellKnownPort: 25,
    describe: 'SMTP (smtp-server): STARTTLS, AUTH PLAIN/LOGIN, delivers to the mail store',
    start: (o) => startSmtpServer(o),
    tryWith: (s) => sendWithCurl(`smtp://${s.host}:${s.port}`, true),
  },
  {
    name: 'smtps',
    proto: 'smtps',
    wellKnownPort: 465,
    describe: 'SMTP over implicit TLS (RFC 8314)',
    start: (o) => startSmtpServer({ ...o, secure: true }),
    tryWith: (s) => sendWithCurl(`smtps://${s.host}:${s.port}`, false),
  },
  {
    name: 'submission',
    proto: 'smtp',
    wellKnownPort: 587,
    describe: 'mail submission (RFC 6409): like smtp, AUTH required',
    start: (o) => startSmtpServer({ ...o, requireAuth: true }),
    tryWith: (s) => sendWithCurl(`smtp://${s.host}:${s.port}`, true),
  },
  {
    name: 'imap',
    proto: 'imap',
    wellKnownPort: 143,
    describe: 'IMAP4rev1 (own): STARTTLS, IDLE, UIDPLUS, MOVE',
    start: (o) => startImapServer(o),
    tryWith: (s) => `curl --ssl-reqd --cacert ${caFile()} -u demo:demo 'imap://${s.host}:${s.port}/INBOX;UID=1'`,
  },
  {
    name: 'imaps',
    proto: 'imaps',
    wellKnownPort: 993,
    describe: 'IMAP over implicit TLS',
    start: (o) => startImapServer({ ...o, secure: true }),
    tryWith: (s) => `curl --cacert ${caFile()} -u demo:demo 'imaps://${s.host}:${s.port}/INBOX?ALL'`,
  },
  {
    name: 'pop3',
    proto: 'pop3',
    wellKnownPort: 110,
    describe: 'POP3 (own, RFC 1939): STLS, TOP, UIDL, maildrop lock',
    start: (o) => startPop3Server(o),
    tryWith: (s) => `curl --ssl-reqd --cacert ${caFile()} -u demo:demo pop3://${s.host}:${s.port}/`,
  },
  {
    name: 'pop3s',
    proto: 'pop3s',
    wellKnownPort: 995,
    describe: 'POP3 over implicit TLS',
    start: (o) => startPop3Server({ ...o, secure: true }),
    tryWith: (s) => `curl --cacert ${caFile()} -u demo:demo pop3s://${s.host}:${s.port}/1`,
  },
);
