import { join } from 'node:path';
import type { ServiceEntry } from '../core/registry.ts';
import type { RunningServer } from '../core/server.ts';
import { dataDir } from '../core/paths.ts';
import { startFtpServer, type RunningFtpServer } from './ftp/index.ts';
import { startHttpServer } from './http/index.ts';
import { startTcpServer } from './tcp/index.ts';
import { startUdpServer } from './udp/index.ts';
import { registerWebRtcPage, startSignalingServer, type RunningSignalingServer } from './webrtc/index.ts';
import { startWsServer } from './ws/index.ts';
import { startImapServer } from './imap/index.ts';
import { startPop3Server } from './pop3/index.ts';
import { startSmtpServer } from './smtp/index.ts';

const py = (code: string): string => `python3 -c "${code}"`;

/** The local CA that `wirelab up` made (core/tls), for curl --cacert and Python's ssl. */
const caPath = (): string => join(dataDir(), 'tls', 'ca.pem');

/** A WebSocket echo in Python's standard library: the upgrade handshake, then one masked text frame, and the echo. */
function pyWebSocket(s: RunningServer, secure: boolean): string {
  const connect = secure
    ? `c=ssl.create_default_context(cafile='${caPath()}');s=c.wrap_socket(socket.create_connection(('${s.host}',${s.port})),server_hostname='localhost')`
    : `s=socket.create_connection(('${s.host}',${s.port}))`;
  return py(
    `import socket,ssl,base64,os;${connect};k=base64.b64encode(os.urandom(16)).decode();` +
      `s.send(f'GET /echo HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: {k}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'.encode());` +
      `print(s.recv(1024).decode());s.send(bytes([0x81,0x82,0,0,0,0])+b'hi');print(s.recv(64))`,
  );
}

/** The other wirelab servers a CONNECT may reach, from this server's port and the port base it implies. */
function ownTargets(o: { host: string; port: number }, wellKnownPort: number): string[] {
  if (o.port === 0) return [];
  const base = o.port - wellKnownPort;
  return SERVICES.filter((s) => s.proto === 'tcp' || s.proto === 'http' || s.proto === 'ws').map((s) => `${o.host}:${base + s.wellKnownPort}`);
}

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
    name: 'http',
    proto: 'http',
    wellKnownPort: 80,
    describe: 'HTTP/1.1 playground: /anything /status /redirect /delay /bytes (Range) /cache (304) /sse /upload ...',
    start: (o) => startHttpServer({ ...o, connectTargets: ownTargets(o, 80), routes: [registerWebRtcPage] }),
    tryWith: (s) => `curl -i http://${s.host}:${s.port}/anything`,
  },
  {
    name: 'https',
    proto: 'http',
    wellKnownPort: 443,
    describe: 'the same playground over TLS, HTTP/2 or HTTP/1.1 by ALPN',
    start: (o) => startHttpServer({ ...o, tls: true, connectTargets: ownTargets(o, 443), routes: [registerWebRtcPage] }),
    tryWith: (s) => `curl -i --http2 --cacert ${caPath()} https://localhost:${s.port}/anything`,
  },
  {
    // WebSocket has no IANA port of its own (it upgrades HTTP on 80 and 443): wirelab puts it next door, 81 and 444.
    name: 'ws',
    proto: 'ws',
    wellKnownPort: 81,
    describe: 'WebSocket: /echo, /room/<name> broadcast, ping/pong heartbeat, maxPayload 1 MiB (close 1009)',
    start: (o) => startWsServer(o),
    tryWith: (s) => pyWebSocket(s, false),
  },
  {
    name: 'wss',
    proto: 'ws',
    wellKnownPort: 444,
    describe: 'the same WebSocket server over TLS',
    start: (o) => startWsServer({ ...o, tls: true }),
    tryWith: (s) => pyWebSocket(s, true),
  },
  {
    name: 'ftp',
    proto: 'ftp',
    wellKnownPort: 21,
    describe: 'FTP (RFC 959) with AUTH TLS, EPSV/EPRT, MLSD; user demo / demo',
    start: (o) => startFtpServer(o),
    // AUTH TLS first: the server refuses USER in clear (allowInsecureAuth is off).
    tryWith: (s) => `curl --ssl-reqd --cacert ${caPath()} ftp://demo:demo@${s.host}:${s.port}/`,
    extra: (s) => ({ root: (s as RunningFtpServer).root }),
  },
  {
    name: 'ftps',
    proto: 'ftps',
    wellKnownPort: 990,
    describe: 'implicit FTPS: TLS from the first byte; user demo / demo',
    start: (o) => startFtpServer({ ...o, implicitTls: true }),
    tryWith: (s) => `curl --cacert ${caPath()} ftps://demo:demo@localhost:${s.port}/`,
    extra: (s) => ({ root: (s as RunningFtpServer).root }),
  },
  {
    // WebRTC signaling has no IANA port: wirelab puts it at 82, next to the WebSocket server it runs on.
    name: 'webrtc-signal',
    proto: 'ws',
    wellKnownPort: 82,
    describe: 'WebRTC signaling at /signal: rooms; offer, answer, candidate relayed with session ids (README, "WebRTC")',
    start: (o) => startSignalingServer(o),
    url: (s) => (s as RunningSignalingServer).signalUrl,
    // The browser page (GET /webrtc on the HTTP server) and the werift peer of the CLI, both joining room "demo".
    extra: (s, others) => {
      const signal = (s as RunningSignalingServer).signalUrl;
      const http = others?.get('http');
      return {
        ...(http?.url ? { page: `${http.url}/webrtc?signal=${signal}&room=demo` } : {}),
        peer: `npx wirelab webrtc --url ${signal} --room demo`,
      };
    },
    tryWith: (s) =>
      py(
        `import socket,base64,os,time;s=socket.create_connection(('${s.host}',${s.port}));k=base64.b64encode(os.urandom(16)).decode();` +
          `s.send(f'GET /signal HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: {k}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'.encode());` +
          `time.sleep(0.3);print(s.recv(4096).decode(errors='replace'))`,
      ),
  },
];

// ---- Mail (issue 5): SMTP, IMAP and POP3 over one store under the data dir; the demo user is demo / demo. ----
const sendWithCurl = (url: string, starttls: boolean): string =>
  `printf 'Subject: hello\\r\\n\\r\\nfrom curl\\r\\n' | curl ${starttls ? '--ssl-reqd ' : ''}--cacert ${caPath()} ${url} -u demo:demo --mail-from demo@localhost --mail-rcpt demo@localhost -T -`;

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
    tryWith: (s) => `curl --ssl-reqd --cacert ${caPath()} -u demo:demo 'imap://${s.host}:${s.port}/INBOX;UID=1'`,
  },
  {
    name: 'imaps',
    proto: 'imaps',
    wellKnownPort: 993,
    describe: 'IMAP over implicit TLS',
    start: (o) => startImapServer({ ...o, secure: true }),
    tryWith: (s) => `curl --cacert ${caPath()} -u demo:demo 'imaps://${s.host}:${s.port}/INBOX?ALL'`,
  },
  {
    name: 'pop3',
    proto: 'pop3',
    wellKnownPort: 110,
    describe: 'POP3 (own, RFC 1939): STLS, TOP, UIDL, maildrop lock',
    start: (o) => startPop3Server(o),
    tryWith: (s) => `curl --ssl-reqd --cacert ${caPath()} -u demo:demo pop3://${s.host}:${s.port}/`,
  },
  {
    name: 'pop3s',
    proto: 'pop3s',
    wellKnownPort: 995,
    describe: 'POP3 over implicit TLS',
    start: (o) => startPop3Server({ ...o, secure: true }),
    tryWith: (s) => `curl --cacert ${caPath()} -u demo:demo pop3s://${s.host}:${s.port}/1`,
  },
);
