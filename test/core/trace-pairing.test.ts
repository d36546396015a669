import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHttpClient } from '../../clients/http.ts';
import { createSmtpClient } from '../../clients/smtp.ts';
import { connectTcp } from '../../clients/tcp.ts';
import { createTracer, JsonlSink, MemorySink, type TraceEvent } from '../../core/trace/index.ts';
import { startHttpServer } from '../../servers/http/index.ts';
import { startSmtpServer } from '../../servers/smtp/index.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import { selectEvents, traceStats } from '../../bin/commands/trace.ts';
import { writePcapng } from '../../core/export/pcapng.ts';
import { readTraceFile } from '../../core/trace/read.ts';
import { runCli } from '../helpers/cli.ts';
import { memoryStore } from '../helpers/mail.ts';

/** Each conversation id and the roles and connection ids that carry it. */
function byConv(events: TraceEvent[]): Map<string, { roles: Set<string>; cids: Set<string> }> {
  const out = new Map<string, { roles: Set<string>; cids: Set<string> }>();
  for (const e of events) {
    if (!e.conv || !e.role) continue;
    let c = out.get(e.conv);
    if (!c) out.set(e.conv, (c = { roles: new Set(), cids: new Set() }));
    c.roles.add(e.role);
    c.cids.add(e.cid);
  }
  return out;
}

test('both ends of one connection share its conversation id (TCP, HTTP, SMTP); one id per TCP connection; absolute ts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-pairing-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'trace.jsonl');
  const sink = new MemorySink();
  const tracer = createTracer([sink, new JsonlSink(file)]);
  const tcp = await startTcpServer({ tracer });
  const http = await startHttpServer({ tracer });
  const smtp = await startSmtpServer({ tracer, store: await memoryStore() });
  const https = await startHttpServer({ tracer, tls: true });
  t.after(() => Promise.all([tcp.close(), http.close(), smtp.close(), https.close()]));

  const c = await connectTcp({ port: tcp.port, tracer });
  await c.send('ping');
  await c.next();
  await c.end();
  const hc = await createHttpClient({ tracer });
  await hc.request(`http://127.0.0.1:${http.port}/hello`);
  await hc.close();
  const h2 = await createHttpClient({ tracer, http2: true });
  await h2.request(`https://localhost:${https.port}/hello`);
  await h2.close();
  const mail = await createSmtpClient({ port: smtp.port, tracer, ignoreTls: true });
  for (const n of [1, 2]) await mail.send({ from: 'ann@localhost', to: ['demo@localhost'], subject: `pairing ${n}`, text: 'x' });
  await tracer.close();

  const convs = byConv(sink.events);
  const both = [...convs.values()].filter((v) => v.roles.has('client') && v.roles.has('server'));
  // TCP echo, HTTP, and two SMTP connections: each traced from both ends under one conversation id.
  assert.ok(both.length >= 4, `paired conversations: ${JSON.stringify([...convs].map(([k, v]) => [k, [...v.roles], [...v.cids]]))}`);
  const smtpClientCids = new Set(sink.events.filter((e) => e.proto === 'smtp' && e.cid.startsWith('smtpc#') && e.conv).map((e) => `${e.cid} ${e.conv}`));
  assert.equal(smtpClientCids.size, 2, `the SMTP client's two TCP connections have two ids: ${[...smtpClientCids].join(', ')}`);
  assert.equal(new Set([...smtpClientCids].map((s) => s.split(' ')[0])).size, 2);
  for (const v of both) assert.equal(v.cids.size, 2, 'one id per end');
  // HTTP/2 over TLS: the server's handshake and its session are one connection, one id.
  const handshake = sink.events.find((e) => e.proto === 'tls' && e.kind === 'handshake' && e.role === 'server' && e.meta?.alpn === 'h2');
  const session = sink.events.find((e) => e.kind === 'h2-session');
  assert.ok(handshake && session, 'an HTTP/2 handshake and session were traced');
  assert.equal(session.cid, handshake.cid);
  assert.equal(session.conv, handshake.conv);
  // Library debug lines are off without libs: nodemailer's "Sending message" and the like never became events.
  assert.equal(sink.events.filter((e) => e.cid.startsWith('smtpc#') && (e.kind === 'info' || e.kind === 'debug')).length, 0);
  assert.ok(sink.events.every((e) => typeof e.ts === 'number' && Math.abs(e.ts - Date.now()) < 120_000));

  // The JSON lines carry the same: wirelab trace show --cid follows one connection from both ends.
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as TraceEvent);
  const server = lines.find((e) => e.proto === 'smtp' && e.role === 'server' && e.local)!;
  const shown = await runCli(['trace', 'show', file, '--cid', server.cid]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, / S:\d+ /);
  assert.match(shown.stdout, /smtpc#\d+\s+C:\d+ .*MAIL FROM/);
  // The rest of `wirelab trace` in process (each CLI start costs seconds on a loaded machine).
  const read = await readTraceFile(file);
  assert.equal(read.badLines, 0);
  const grep = selectEvents(read.events, { proto: 'smtp', grep: '^MAIL' });
  assert.ok(Array.isArray(grep) && grep.length === 4, `MAIL FROM at both ends of both connections: ${JSON.stringify(grep)}`);
  assert.equal(traceStats(read.events).find((s) => s.proto === 'smtp')?.conversations, 2);
  const out = join(dir, 'out.pcapng');
  const summary = await writePcapng(out, read.events);
  assert.ok(summary.tcpConversations >= 4, JSON.stringify(summary));
  assert.equal((await readFile(out)).readUInt32LE(0), 0x0a0d0d0a);
});
