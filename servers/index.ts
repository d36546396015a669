import { join } from 'node:path';
import type { ServiceEntry } from '../core/registry.ts';
import type { RunningServer } from '../core/server.ts';
import { dataDir } from '../core/paths.ts';
import { startHttpServer } from './http/index.ts';
import { startTcpServer } from './tcp.ts';
import { startUdpServer } from './udp.ts';
import { startSignalingServer } from './webrtc/index.ts';
import { startWsServer } from './ws/index.ts';

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
    start: (o) => startHttpServer({ ...o, connectTargets: ownTargets(o, 80) }),
    tryWith: (s) => `curl -i http://${s.host}:${s.port}/anything`,
  },
  {
    name: 'https',
    proto: 'http',
    wellKnownPort: 443,
    describe: 'the same playground over TLS, HTTP/2 or HTTP/1.1 by ALPN',
    start: (o) => startHttpServer({ ...o, tls: true, connectTargets: ownTargets(o, 443) }),
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
    // WebRTC signaling has no IANA port: wirelab puts it at 82, next to the WebSocket server it runs on.
    name: 'webrtc-signal',
    proto: 'ws',
    wellKnownPort: 82,
    describe: 'WebRTC signaling at /signal: rooms; offer, answer, candidate relayed with session ids (README, "WebRTC")',
    start: (o) => startSignalingServer(o),
    tryWith: (s) =>
      py(
        `import socket,base64,os,time;s=socket.create_connection(('${s.host}',${s.port}));k=base64.b64encode(os.urandom(16)).decode();` +
          `s.send(f'GET /signal HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: {k}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'.encode());` +
          `time.sleep(0.3);print(s.recv(4096).decode(errors='replace'))`,
      ),
  },
];
