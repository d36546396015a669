/** Puts a fuzz case on the wire (TCP, TLS or UDP) and a valid client on every port afterwards (the probes). */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { connectWs } from '../../clients/ws.ts';
import { tlsClientOptions } from '../../core/tls/index.ts';
import { baseProto, isTls, type Case, type Endpoint } from './cases.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long a case may keep its connection: the server's answer (or its close) normally comes well before. */
export const HOLD_MS = 400;

/** Sends one case; resolves (never rejects) once the server closed the connection or HOLD_MS passed after the last byte. */
export function deliver(e: Endpoint, c: Case): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    let hold: NodeJS.Timeout | undefined;
    const socket: net.Socket = c.tls
      ? tls.connect({ host: e.host, port: e.port, rejectUnauthorized: false, servername: 'localhost', ...(c.alpn ? { ALPNProtocols: c.alpn } : {}) })
      : net.connect({ host: e.host, port: e.port });
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(hold);
      clearTimeout(cap);
      socket.destroy();
      resolve();
    };
    // Whatever happens to this connection is the server's choice; the suite only checks the server afterwards.
    const cap = setTimeout(finish, HOLD_MS + c.chunks.length * c.gapMs + 3000);
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('data', () => {}); // read and drop: a server's answer never backs up into its buffers
    socket.once(c.tls ? 'secureConnect' : 'connect', async () => {
      for (const [i, chunk] of c.chunks.entries()) {
        if (done) return;
        if (i > 0 && c.gapMs > 0) await sleep(c.gapMs);
        if (chunk.length > 0 && !socket.destroyed) socket.write(chunk);
      }
      if (done) return;
      if (c.then === 'fin') socket.end();
      else if (c.then === 'rst') {
        // A TLS socket has no reset of its own: its TCP connection is closed under it instead.
        if (c.tls) socket.destroy();
        else socket.resetAndDestroy();
        return finish();
      }
      hold = setTimeout(finish, HOLD_MS);
    });
  });
}

export function sendDatagrams(e: Endpoint, datagrams: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const end = (): void => {
      s.close();
      resolve();
    };
    s.on('error', () => {});
    s.bind(0, '127.0.0.1', () => {
      for (const d of datagrams) s.send(d, e.port, e.host);
      setTimeout(end, 100);
    });
  });
}

// ---- probes: after each batch, a valid client on every port ----

type Step = { send?: string; expect: RegExp };

/** Greeting and a harmless command per line protocol (no login: auth over cleartext may be refused). */
const SCRIPTS: Record<string, Step[]> = {
  smtp: [{ expect: /^220 /m }, { send: 'NOOP\r\n', expect: /^250 /m }],
  imap: [{ expect: /^\* OK/m }, { send: 'p1 NOOP\r\n', expect: /^p1 OK/m }],
  pop3: [{ expect: /^\+OK/m }, { send: 'CAPA\r\n', expect: /^\.\r$/m }],
  ftp: [{ expect: /^220 /m }, { send: 'NOOP\r\n', expect: /^200 /m }],
  http: [{ send: 'GET /anything HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', expect: /^HTTP\/1\.1 \d{3} / }],
  // MQTT 3.1.1 CONNECT (clean session, keep-alive 10 s, client id "fz") answered by CONNACK "accepted".
  // eslint-disable-next-line no-control-regex -- MQTT is binary: CONNACK is 0x20 0x02 0x00 0x00
  mqtt: [{ send: '\x10\x0e\x00\x04MQTT\x04\x02\x00\x0a\x00\x02fz', expect: /^\x20\x02\x00\x00/ }],
  'pubsub-http': [{ send: 'GET /admin/topics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', expect: /^HTTP\/1\.1 200 / }],
};

/** Runs a line script over TCP or TLS (the local CA verified); resolves to an error text, or null when it held. */
async function script(e: Endpoint, steps: Step[], timeoutMs: number): Promise<string | null> {
  const tlsOpts = isTls(e) ? await tlsClientOptions({ alpn: baseProto(e) === 'http' ? ['http/1.1'] : undefined }) : undefined;
  return new Promise((resolve) => {
    const socket: net.Socket = tlsOpts ? tls.connect({ host: e.host, port: e.port, ...tlsOpts }) : net.connect({ host: e.host, port: e.port });
    let got = '';
    let i = 0;
    const end = (result: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => end(`step ${i + 1} (${steps[i]?.expect}) timed out; got ${JSON.stringify(got.slice(-200))}`), timeoutMs);
    const advance = (): void => {
      while (i < steps.length && steps[i]!.expect.test(got)) {
        got = '';
        i++;
        if (i === steps.length) return end(null);
        if (steps[i]!.send) socket.write(steps[i]!.send!, 'latin1');
      }
    };
    socket.on('error', (err) => end(`${err.message} at step ${i + 1}`));
    socket.on('close', () => end(`closed at step ${i + 1}; got ${JSON.stringify(got.slice(-200))}`));
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      advance();
    });
    socket.once(tlsOpts ? 'secureConnect' : 'connect', () => {
      if (steps[0]!.send) socket.write(steps[0]!.send, 'latin1');
      else advance();
    });
  });
}

/** A TCP port of unknown protocol (chargen, discard, a server added later): it accepts, and does not drop us at once. */
function tcpAlive(e: Endpoint, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: e.host, port: e.port });
    let echoed = '';
    const end = (r: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => end('no answer and no connection'), timeoutMs);
    socket.on('error', (err) => end(err.message));
    socket.on('close', () => end('closed at once'));
    socket.on('data', (d: Buffer) => {
      echoed += d.toString('latin1');
      // echo answers the line; chargen streams; either is an answer.
      if (e.name !== 'tcp-echo' || echoed.includes('wirelab-probe')) end(null);
    });
    socket.once('connect', () => {
      socket.write('wirelab-probe\r\n');
      // discard never answers: connected and still open after a moment is its answer
      if (e.name !== 'tcp-echo') setTimeout(() => end(null), 300);
    });
  });
}

function udpEcho(e: Endpoint, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const payload = Buffer.from(`wirelab-probe ${Math.random()}`);
    let tries = 0;
    const end = (r: string | null): void => {
      clearInterval(again);
      clearTimeout(timer);
      s.close();
      resolve(r);
    };
    s.on('error', (err) => end(err.message));
    s.on('message', (m) => m.equals(payload) && end(null));
    // UDP may drop: up to five tries before the deadline
    const again = setInterval(() => tries++ < 5 && s.send(payload, e.port, e.host), timeoutMs / 6);
    const timer = setTimeout(() => end('no echo'), timeoutMs);
    s.send(payload, e.port, e.host);
  });
}

async function wsEcho(e: Endpoint, timeoutMs: number): Promise<string | null> {
  const scheme = isTls(e) ? 'wss' : 'ws';
  const path = e.paths?.includes('/echo') ? '/echo' : (e.paths?.[0] ?? '/');
  try {
    const c = await connectWs({ url: `${scheme}://${e.host}:${e.port}${path}`, handshakeTimeoutMs: timeoutMs });
    try {
      if (path !== '/echo') return null;
      await c.send('wirelab-probe');
      const m = await c.next(timeoutMs);
      return m.data.toString() === 'wirelab-probe' ? null : `echo was ${m.data.toString().slice(0, 80)}`;
    } finally {
      await c.close().catch(() => {});
    }
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** A valid client for this port, chosen by its proto in the registry; null when the service answered. */
export async function probe(e: Endpoint, timeoutMs = 5000): Promise<string | null> {
  const proto = baseProto(e);
  if (e.proto === 'udp') return udpEcho(e, timeoutMs);
  if (proto === 'ws') return wsEcho(e, timeoutMs);
  const steps = SCRIPTS[proto];
  if (steps) return script(e, steps, timeoutMs);
  if (isTls(e)) return script(e, [{ expect: /^/ }], timeoutMs);
  return tcpAlive(e, timeoutMs);
}
