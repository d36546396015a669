import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { toPcapng } from '../../../core/export/pcapng.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { startFtpServer } from '../../../servers/ftp/index.ts';
import { startHttpServer } from '../../../servers/http/index.ts';
import { startSmtpServer } from '../../../servers/smtp/index.ts';
import { memoryStore } from '../../helpers/mail.ts';
import { requirePeer } from '../../helpers/peers.ts';
import { hashPassword } from '../../../pubsub/broker/index.ts';
import { startRig } from '../../pubsub/doors/mqtt-helpers.ts';

const run = promisify(execFile);

/** A client on a real socket that keeps every byte it sent and read: `step` sends and waits for a matching answer. */
async function talk(port: number) {
  const s = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  const sent: Buffer[] = [];
  let got = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    got = Buffer.concat([got, d]);
    wake?.();
  });
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  s.once('close', () => wake?.());
  return {
    local: s.localPort!,
    async step(send: string | undefined, until: RegExp): Promise<string> {
      const from = got.length;
      if (send !== undefined) {
        sent.push(Buffer.from(send, 'latin1'));
        s.write(send, 'latin1');
      }
      while (!until.test(got.subarray(from).toString('latin1')) && !s.destroyed) await new Promise<void>((r) => (wake = r));
      return got.subarray(from).toString('latin1');
    },
    async close(): Promise<{ sent: Buffer; got: Buffer }> {
      s.end();
      await closed;
      return { sent: Buffer.concat(sent), got };
    },
  };
}

/**
 * One tshark run (each start costs seconds on a loaded machine): expert infos of warning severity and up, and
 * follow,tcp,raw of each conversation, as the bytes of node 0 (the client) and node 1 (the server) by client port.
 */
async function inspect(file: string, convs: Array<[number, number]>): Promise<{ expert: string; follow: Map<number, { client: Buffer; server: Buffer }> }> {
  const z = convs.flatMap(([c, s]) => ['-z', `follow,tcp,raw,127.0.0.1:${c},127.0.0.1:${s}`]);
  const { stdout } = await run('tshark', ['-r', file, '-q', '-z', 'expert,warn', ...z], { maxBuffer: 64 * 1024 * 1024 });
  const follow = new Map<number, { client: Buffer; server: Buffer }>();
  const sections = stdout.split(/^=+$/m);
  for (const sec of sections) {
    const node0 = /^Node 0: [\d.]+:(\d+)$/m.exec(sec);
    if (!node0) continue;
    const body = sec.split('\n').filter((l) => /^\t?[0-9a-f]+$/.test(l));
    const hex = (tab: boolean) => Buffer.from(body.filter((l) => l.startsWith('\t') === tab).map((l) => l.trim()).join(''), 'hex');
    follow.set(Number(node0[1]), { client: hex(false), server: hex(true) });
  }
  return { expert: sections.filter((s) => !/^Follow:/m.test(s)).join('\n'), follow };
}

test('pcapng export: tshark reads it with no warning; HTTP, SMTP and FTP (control and data) follow as sent; MQTT PUBLISH dissects', async (t) => {
  if (!requirePeer(t, 'tshark', 'tshark')) return;
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-pcapng-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sink = new MemorySink({ wire: true });
  const tracer = createTracer([sink]);
  await mkdir(join(dir, 'ftp', 'demo'), { recursive: true });
  await writeFile(join(dir, 'ftp', 'demo', 'hello.txt'), 'hello over the data connection\n'.repeat(200));
  const http = await startHttpServer({ tracer });
  const smtp = await startSmtpServer({ tracer, store: await memoryStore() });
  const ftp = await startFtpServer({ tracer, rootDir: join(dir, 'ftp'), allowInsecureAuth: true });
  const rig = await startRig(t, { server: { tracer }, broker: { users: [{ name: 'ann', passwordHash: await hashPassword('mqtt-secret') }], allowInsecureAuth: true } });
  t.after(() => Promise.all([http.close(), smtp.close(), ftp.close()]));

  const h = await talk(http.port);
  await h.step('GET /get?pcap=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic c2VjcmV0\r\nConnection: close\r\n\r\n', /\r\n\r\n[\s\S]*\}\s*$/);
  const hb = await h.close();

  const m = await talk(smtp.port);
  await m.step(undefined, /^220 /m);
  await m.step('EHLO pcap.test\r\n', /^250 /m);
  await m.step('MAIL FROM:<ann@localhost>\r\n', /^250 /m);
  await m.step('RCPT TO:<demo@localhost>\r\n', /^250 /m);
  await m.step('DATA\r\n', /^354 /m);
  await m.step('Subject: pcap\r\n\r\nbody line\r\n.\r\n', /^250 /m);
  await m.step('QUIT\r\n', /^221 /m);
  const mb = await m.close();

  const f = await talk(ftp.port);
  await f.step(undefined, /^220 /m);
  await f.step('USER demo\r\n', /^331 /m);
  await f.step('PASS demo\r\n', /^230 /m);
  await f.step('TYPE I\r\n', /^200 /m);
  const pasv = await f.step('PASV\r\n', /^227 /m);
  const [, p1, p2] = /\(\d+,\d+,\d+,\d+,(\d+),(\d+)\)/.exec(pasv)!;
  const dataPort = Number(p1) * 256 + Number(p2);
  const dataSocket = net.connect(dataPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => dataSocket.once('connect', resolve).once('error', reject));
  const dataLocal = dataSocket.localPort!;
  const dataParts: Buffer[] = [];
  dataSocket.on('data', (d: Buffer) => dataParts.push(d));
  const dataClosed = new Promise<void>((resolve) => dataSocket.once('close', () => resolve()));
  await f.step('RETR hello.txt\r\n', /^226 /m);
  await dataClosed;
  await f.step('QUIT\r\n', /^221 /m);
  const fb = await f.close();

  await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(rig.server.port), '-t', 'pcap/topic', '-m', 'hello mqtt', '-u', 'ann', '-P', 'mqtt-secret'], { timeout: 10_000 });

  const file = join(dir, 'all.pcapng');
  const { file: bytes, summary } = toPcapng(sink.events);
  await writeFile(file, bytes);
  if (process.env.PCAP_KEEP) await writeFile(process.env.PCAP_KEEP, bytes);
  assert.ok(summary.tcpConversations >= 5, `conversations: ${JSON.stringify(summary)}`);
  assert.equal(bytes.includes('c2VjcmV0'), false, 'the Authorization header is masked');
  assert.equal(bytes.includes('mqtt-secret'), false, 'the MQTT password is masked');
  assert.equal(bytes.includes('PASS demo'), false, 'the FTP password is masked');

  const seen = await inspect(file, [[h.local, http.port], [m.local, smtp.port], [f.local, ftp.port], [dataLocal, dataPort]]);
  // No malformed packet, no expert info of warning or error severity (retransmission, lost segment, bad checksum...).
  assert.doesNotMatch(seen.expert, /Warnings|Errors|Malformed/, seen.expert);
  const follow = (port: number) => seen.follow.get(port) ?? assert.fail(`no conversation from port ${port}`);

  const fh = follow(h.local);
  assert.equal(fh.client.toString('latin1'), hb.sent.toString('latin1').replace('Basic c2VjcmV0', '**************'));
  assert.deepEqual(fh.server, hb.got);
  const fm = follow(m.local);
  assert.deepEqual(fm.client, mb.sent);
  assert.deepEqual(fm.server, mb.got);
  const ff = follow(f.local);
  assert.equal(ff.client.toString('latin1'), fb.sent.toString('latin1').replace('PASS demo', 'PASS ****'));
  assert.deepEqual(ff.server, fb.got);
  const fd = follow(dataLocal);
  assert.equal(fd.client.length, 0);
  assert.deepEqual(fd.server, Buffer.concat(dataParts));

  const mqtt = await run('tshark', ['-r', file, '-d', `tcp.port==${rig.server.port},mqtt`, '-Y', 'mqtt.msgtype == 3', '-T', 'fields', '-e', 'mqtt.topic', '-e', 'mqtt.msg']);
  assert.match(mqtt.stdout, /^pcap\/topic\t(?:68656c6c6f206d717474|hello mqtt)$/m, mqtt.stdout);
});
