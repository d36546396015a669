import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import http2 from 'node:http2';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { connectPubsub } from '../../../clients/pubsub.ts';
import { connectPeerPair } from '../../../clients/webrtc-pair.ts';
import { toPcapng } from '../../../core/export/pcapng.ts';
import { RealPcapngSink, type PcapngWritten } from '../../../core/export/pcapng-real.ts';
import { captureAvailable, cutPcap, parsePcap, startCapture } from '../../../core/capture/index.ts';
import { startTcpProxy } from '../../../core/impair/tcp/proxy.ts';
import { startUdpRelay } from '../../../core/impair/udp/relay.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { createBroker, hashPassword } from '../../../pubsub/broker/index.ts';
import { startMqttServer } from '../../../pubsub/doors/mqtt/index.ts';
import { startPubsubTcpServer } from '../../../pubsub/doors/native/index.ts';
import { startHttpServer } from '../../../servers/http/index.ts';
import { startTcpServer } from '../../../servers/tcp/index.ts';
import { startUdpServer } from '../../../servers/udp/index.ts';
import { startSignalingServer } from '../../../servers/webrtc/index.ts';
import { startWsServer } from '../../../servers/ws/index.ts';
import { requirePeer } from '../../helpers/peers.ts';

const run = promisify(execFile);
const tshark = async (...args: string[]): Promise<string> => (await run('tshark', args, { maxBuffer: 64 * 1024 * 1024 })).stdout;

/**
 * The taps added for issue 16's remaining pcapng items, in one traced process and one exported file: HTTP/2 over TLS
 * (the frames' plaintext, HPACK credentials masked), WebSocket over the ws server, the native pub/sub TCP door, both
 * legs of the impairment proxy and of the UDP relay, and werift's UDP datagrams (STUN, DTLS).
 */
test('pcapng taps: HTTP/2, WebSocket, pub/sub door, impairment proxy and relay legs, WebRTC: tshark dissects each, no warning, no secret', { timeout: 120_000 }, async (t) => {
  if (!requirePeer(t, 'tshark', 'tshark')) return;
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-pcapng-taps-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sink = new MemorySink({ wire: true });
  const tracer = createTracer([sink]);
  const t0 = performance.now();

  // HTTP/2 over TLS, a credential in the headers.
  const h2s = await startHttpServer({ tls: {}, http2: true, rateLimitBurst: 0, tracer });
  t.after(() => h2s.close());
  const session = http2.connect(h2s.url, { rejectUnauthorized: false });
  session.on('error', () => undefined);
  const h2body = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ':path': '/anything?probe=h2-pcap', authorization: 'Bearer h2-secret-token', cookie: 'sid=cookie-secret' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve(body));
    req.on('error', reject);
    req.end();
  });
  assert.match(h2body, /probe/);
  await new Promise<void>((resolve) => session.close(() => resolve()));

  // WebSocket: the upgrade and one message each way.
  const wss = await startWsServer({ tracer });
  t.after(() => wss.close());
  const ws = new WebSocket(`ws://127.0.0.1:${wss.port}/echo`, { headers: { authorization: 'Basic d3Mtc2VjcmV0' } });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send('hello ws pcap');
  await new Promise((resolve) => ws.once('message', resolve));
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));

  // The native pub/sub door: hello with a password, a publish.
  const broker = await createBroker({ users: [{ name: 'ann', passwordHash: await hashPassword('door-secret') }], allowInsecureAuth: true });
  const door = await startPubsubTcpServer({ broker, tracer });
  t.after(async () => {
    await door.close();
    await broker.close();
  });
  const pc = await connectPubsub({ url: door.url, user: 'ann', password: 'door-secret' });
  await pc.publish('pcap.topic', 'hello door pcap');
  await pc.close();
  // The same door and the MQTT door behind impairment proxies: each proxy masks with its server's wireMask (the hello's
  // password; MQTT CONNECT's), on both legs, where text-line masking would have let them through.
  const mqttDoor = await startMqttServer({ broker });
  const doorProxy = await startTcpProxy({ name: 'door-proxy', upstreamPort: door.port, tracer, wireMask: door.wireMask! });
  const mqttProxy = await startTcpProxy({ name: 'mqtt-proxy', upstreamPort: mqttDoor.port, tracer, wireMask: mqttDoor.wireMask! });
  t.after(async () => {
    await Promise.all([doorProxy.close(), mqttProxy.close()]);
    await mqttDoor.close();
  });
  const viaProxy = await connectPubsub({ url: door.url.replace(`:${door.port}`, `:${doorProxy.port}`), user: 'ann', password: 'door-secret' });
  await viaProxy.close();
  const mc = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttProxy.port}`, { username: 'ann', password: 'mqtt-door-secret'.replace('mqtt-', ''), reconnectPeriod: 0 });
  await mc.endAsync();
  const proxyLegs = sink.events.filter((e) => e.kind === 'bytes' && e.proto === 'impair' && e.data);
  assert.ok(proxyLegs.length >= 4, 'both proxies traced both legs');
  for (const e of proxyLegs) assert.equal(Buffer.from(e.data!).includes('door-secret'), false, `${e.cid} ${e.dir}: the password is masked`);

  // The impairment proxy in front of the TCP echo server: both legs.
  const echo = await startTcpServer({});
  const proxy = await startTcpProxy({ upstreamPort: echo.port, tracer });
  t.after(async () => {
    await proxy.close();
    await echo.close();
  });
  const c = net.connect(proxy.port, '127.0.0.1');
  await new Promise((resolve) => c.once('connect', resolve));
  const proxyLocal = c.localPort!;
  c.write('through the proxy\n');
  await new Promise((resolve) => c.once('data', resolve));
  c.end();
  await new Promise((resolve) => c.once('close', resolve));

  // The UDP relay in front of the UDP echo server: both legs.
  const uecho = await startUdpServer({});
  const relay = await startUdpRelay({ upstreamPort: uecho.port, tracer });
  t.after(async () => {
    await relay.close();
    await uecho.close();
  });
  const u = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => u.bind(0, '127.0.0.1', () => resolve()));
  const got = new Promise((resolve) => u.once('message', resolve));
  u.send('datagram through the relay', relay.port, '127.0.0.1');
  await got;
  u.close();

  // WebRTC: two werift peers, one data channel message.
  const signaling = await startSignalingServer();
  t.after(() => signaling.close());
  const pair = await connectPeerPair(signaling.signalUrl, 'pcap', (a) => a.createChannel('chat'), { tracer });
  const [ac, bc] = await Promise.all([pair.a.channel('chat'), pair.b.channel('chat')]);
  ac.send('hello webrtc pcap');
  assert.equal((await bc.next()).data, 'hello webrtc pcap');
  await pair.close();

  t.diagnostic(`traffic: ${Math.round(performance.now() - t0)} ms`);
  const file = join(dir, 'taps.pcapng');
  const { file: bytes, summary } = toPcapng(sink.events);
  await writeFile(file, bytes);
  if (process.env.PCAP_KEEP) await writeFile(process.env.PCAP_KEEP, bytes);
  for (const secret of ['h2-secret-token', 'cookie-secret', 'd3Mtc2VjcmV0', 'door-secret']) assert.equal(bytes.includes(secret), false, `${secret} is masked`);
  assert.ok(summary.udpConversations >= 3, JSON.stringify(summary));

  const relayLeg = sink.events.find((e) => e.cid.startsWith('impair#') && e.kind === 'bytes' && e.role === 'client' && e.conv?.startsWith('udp:'))!;
  const relayUpPort = Number(relayLeg.conv!.split('>')[0]!.split(':').pop());
  const webrtcPorts = [...new Set(sink.events.filter((e) => e.proto === 'webrtc' && e.kind === 'bytes').map((e) => Number(e.conv!.split(':').pop())))];
  const decode = [
    ['-d', `tcp.port==${h2s.port},http2`],
    ['-d', `tcp.port==${wss.port},http`],
    ...webrtcPorts.map((p) => ['-d', `udp.port==${p},stun`]),
  ].flat();
  // One tshark run (each start costs seconds of CPU on a loaded machine): the fields of every packet, then the stats.
  const out = await tshark('-r', file, ...decode, '-T', 'fields', '-E', 'separator=|', '-e', 'http2.header.name', '-e', 'http2.header.value', '-e', 'websocket.payload', '-e', 'stun.type', '-e', 'dtls.record.content_type', '-e', 'text',
    '-z', 'expert,warn', '-z', `follow,tcp,ascii,127.0.0.1:${proxyLocal},127.0.0.1:${proxy.port}`, '-z', 'conv,tcp', '-z', 'conv,udp');
  const cut = out.indexOf('\n====');
  const fields = out.slice(0, cut);
  const stats = out.slice(cut);
  const [expert, follow, udpConv] = [stats, stats, stats.slice(stats.indexOf('UDP Conversations'))];
  t.diagnostic(`tshark: ${Math.round(performance.now() - t0)} ms`);
  assert.doesNotMatch(expert, /Warnings|Errors|Malformed/, expert);
  // HTTP/2: the request's pseudo-headers decode; the credentials are there, masked.
  assert.match(fields, /:path[^|\n]*\|[^\n]*\/anything\?probe=h2-pcap/, fields.slice(0, 2000));
  assert.doesNotMatch(fields, /h2-secret-token|cookie-secret/);
  // WebSocket: the message, masked by the client, unmasked by the dissector (as text or hex).
  assert.ok(fields.includes('hello ws pcap') || fields.includes(Buffer.from('hello ws pcap').toString('hex')), 'the WebSocket payload dissects');
  // WebRTC: STUN binding requests and DTLS records.
  assert.match(fields, /\|0x0001\|/, 'a STUN binding request');
  assert.match(fields, /\|22(?:,22)*\|/, 'a DTLS handshake record');
  // The proxy: the client leg carries the bytes both ways; the upstream leg is a conversation of its own.
  assert.match(follow, /through the proxy/);
  assert.match(follow, new RegExp(`127\\.0\\.0\\.1:\\d+\\s+<->\\s+127\\.0\\.0\\.1:${echo.port}`), 'the proxy → echo leg');
  // The relay: the client leg and the upstream leg.
  assert.match(udpConv, new RegExp(`127\\.0\\.0\\.1:${relay.port}`));
  // WebRTC: both peers' taps pair into one conversation per candidate pair, on loopback addresses.
  assert.equal(udpConv.split('\n').filter((l) => webrtcPorts.some((p) => l.includes(`127.0.0.1:${p} `))).length, webrtcPorts.length, udpConv);
  assert.doesNotMatch(udpConv, /0\.0\.0\.0/);
  assert.match(udpConv, new RegExp(`127\\.0\\.0\\.1:${relayUpPort}\\s+<->\\s+127\\.0\\.0\\.1:${uecho.port}`));
  // The pub/sub door: the publish's payload in the client's stream, the password masked (checked above).
  assert.ok(bytes.includes('hello door pcap'));
});

test('--pcap-real: tcpdump\'s packets of the traced conversations where it can capture; else the synthesized file, saying why', async (t) => {
  if (!requirePeer(t, 'tshark', 'tshark')) return;
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-pcapng-real-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const written: PcapngWritten[] = [];
  const real = new RealPcapngSink(join(dir, 'real.pcapng'), { onWritten: (s) => written.push(s) });
  // tcpdump cannot open this interface: the synthesized file, and why.
  const failing = new RealPcapngSink(join(dir, 'fallback.pcapng'), { iface: 'wl-no-such0', onWritten: (s) => written.push(s) });
  await Promise.all([real.ready, failing.ready]);
  const tracer = createTracer([real, failing]);
  const http = await startHttpServer({ tracer });
  try {
    const r = await fetch(`${http.url}/anything?probe=real-pcap`);
    assert.equal(r.status, 200);
    await r.text();
  } finally {
    await http.close();
  }
  await tracer.close();
  const [realOut, fallbackOut] = written;
  assert.equal(fallbackOut!.real, false);
  assert.match(fallbackOut!.note ?? '', /tcpdump|capturing on lo needs root|not installed|only wired up on Linux/);
  // The synthesized file (tshark reads those in the test above).
  assert.ok((await readFile(join(dir, 'fallback.pcapng'))).includes('GET /anything?probe=real-pcap'));
  if (!captureAvailable().ok) {
    assert.equal(realOut!.real, false, 'no capture possible here: synthesized');
    return t.skip(`real capture: ${captureAvailable().reason}`);
  }
  assert.equal(realOut!.real, true, realOut!.note);

  const info = await tshark('-r', join(dir, 'real.pcapng'), '-q', '-z', 'follow,tcp,ascii,0', '-z', 'conv,tcp');
  assert.match(info, /GET \/anything\?probe=real-pcap/);
  // Only the traced conversation (the fetch's connection), not the rest of the machine's loopback traffic.
  assert.equal((info.match(/<->/g) ?? []).length, 1, info);
});

test('a capture stops at maxBytes: the file ends at a whole record within the limit and says it was limited', async (t) => {
  if (!captureAvailable().ok) return t.skip(`capture: ${captureAvailable().reason}`);
  const http = await startHttpServer({});
  t.after(() => http.close());
  const small = await startCapture(`tcp port ${http.port}`, { snaplen: 0, maxBytes: 16 * 1024 });
  const whole = await startCapture(`tcp port ${http.port}`, { snaplen: 0 });
  assert.equal((await (await fetch(`${http.url}/bytes/256`)).arrayBuffer()).byteLength, 256);
  assert.equal((await (await fetch(`${http.url}/bytes/262144`)).arrayBuffer()).byteLength, 262_144);
  const [cut, all] = await Promise.all([small.stopRaw(), whole.stopRaw()]);
  assert.equal(small.limited, true);
  assert.equal(whole.limited, false);
  assert.ok(cut.length <= 16 * 1024 && cut.length > 24, `${cut.length} bytes`);
  assert.ok(all.length > 262_144);
  // Every record whole: the cut file parses, and is the start of the whole one (same packets, fewer of them).
  const [a, b] = [parsePcap(cut), parsePcap(all)];
  assert.ok(a.length > 0 && a.length < b.length, `${a.length} of ${b.length} packets`);
  assert.equal(cutPcap(all, 16 * 1024).length <= 16 * 1024, true);
  assert.deepEqual(cutPcap(all, 10), all.subarray(0, 24).length === 24 ? all.subarray(0, 24) : all);
});
