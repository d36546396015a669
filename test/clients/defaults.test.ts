import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTROL_API_DEFAULTS, startControlApi } from '../../core/impair/control.ts';
import { startTcpProxy, TCP_PROXY_DEFAULTS } from '../../core/impair/tcp/proxy.ts';
import { startUdpRelay, UDP_RELAY_DEFAULTS } from '../../core/impair/udp/relay.ts';
import { createHttpClient, HTTP_CLIENT_DEFAULTS } from '../../clients/http.ts';
import { connectPop3, POP3_CLIENT_DEFAULTS } from '../../clients/pop3.ts';
import { createSmtpClient, SMTP_CLIENT_DEFAULTS } from '../../clients/smtp.ts';
import { connectTcp, TCP_CLIENT_DEFAULTS } from '../../clients/tcp.ts';
import { openUdp, UDP_CLIENT_DEFAULTS } from '../../clients/udp.ts';
import { connectWs, WS_CLIENT_DEFAULTS } from '../../clients/ws.ts';
import { connectFtp, FTP_CLIENT_DEFAULTS } from '../../clients/ftp.ts';
import { connectImap, IMAP_CLIENT_DEFAULTS } from '../../clients/imap.ts';
import { connectSignaling, SIGNALING_CLIENT_DEFAULTS } from '../../clients/signaling.ts';

/**
 * Clients and impairment tools have DEFAULTS objects too, and check options when they are built: a bad value is a
 * TypeError naming the option, before any socket is opened (port 1 is never dialled).
 */
const CASES: { name: string; defaults: object; bad: () => Promise<unknown>; option: string }[] = [
  { name: 'TCP client', defaults: TCP_CLIENT_DEFAULTS, bad: () => connectTcp({ port: 1, connectTimeoutMs: 0 }), option: 'connectTimeoutMs' },
  { name: 'UDP client', defaults: UDP_CLIENT_DEFAULTS, bad: () => openUdp({ port: 1, connect: 'yes' as never }), option: 'connect' },
  { name: 'WebSocket client', defaults: WS_CLIENT_DEFAULTS, bad: () => connectWs({ url: 'ws://127.0.0.1:1/', reconnect: { retries: -1 } }), option: 'reconnect.retries' },
  { name: 'HTTP client', defaults: HTTP_CLIENT_DEFAULTS, bad: () => createHttpClient({ headersTimeoutMs: 0 }), option: 'headersTimeoutMs' },
  { name: 'POP3 client', defaults: POP3_CLIENT_DEFAULTS, bad: () => connectPop3({ port: 1, maxLineLength: 1 }), option: 'maxLineLength' },
  { name: 'SMTP client', defaults: SMTP_CLIENT_DEFAULTS, bad: () => createSmtpClient({ port: 1, timeoutMs: 0 }), option: 'timeoutMs' },
  { name: 'FTP client', defaults: FTP_CLIENT_DEFAULTS, bad: () => connectFtp({ port: 1, secure: 'yes' as never }), option: 'secure' },
  { name: 'IMAP client', defaults: IMAP_CLIENT_DEFAULTS, bad: () => connectImap({ port: 1, auth: { user: 'a', pass: 'b' }, autoIdle: 1 as never }), option: 'autoIdle' },
  { name: 'signaling client', defaults: SIGNALING_CLIENT_DEFAULTS, bad: () => connectSignaling({ url: 'ws://127.0.0.1:1/signal', room: 'r', timeoutMs: 0 }), option: 'timeoutMs' },
  { name: 'TCP impairment proxy', defaults: TCP_PROXY_DEFAULTS, bad: () => startTcpProxy({ upstreamPort: 1, noDelay: 1 as never }), option: 'noDelay' },
  { name: 'UDP impairment relay', defaults: UDP_RELAY_DEFAULTS, bad: () => startUdpRelay({ upstreamPort: 1, port: 70_000 }), option: 'port' },
  { name: 'impairment control API', defaults: CONTROL_API_DEFAULTS, bad: () => startControlApi({ maxProxies: -1 }), option: 'maxProxies' },
];

for (const c of CASES) {
  test(`${c.name}: DEFAULTS are frozen and a bad option is a TypeError naming it`, async () => {
    assert.ok(Object.isFrozen(c.defaults));
    await assert.rejects(c.bad(), (e: TypeError & { code?: string; option?: string }) => e instanceof TypeError && e.code === 'WL_ERR_INVALID_OPTION' && e.option === c.option);
  });
}

test('an option given as undefined keeps its default', async () => {
  const proxy = await startTcpProxy({ upstreamPort: 1, maxConnections: undefined, name: undefined });
  try {
    assert.equal(proxy.name, TCP_PROXY_DEFAULTS.name);
    assert.equal(proxy.maxBufferBytes, TCP_PROXY_DEFAULTS.maxBufferBytes);
  } finally {
    await proxy.close();
  }
});
