import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { startHttpServer, type RunningHttpServer } from '../../servers/http/index.ts';
import { rawExchange } from '../../labs/_raw-http.ts';

// Each malformed or oversized request gets its protocol answer, leaves a trace event, and the server keeps serving.
const sink = new MemorySink();
let server: RunningHttpServer;

before(async () => {
  server = await startHttpServer({ tracer: createTracer([sink]), maxHeaderBytes: 1024, maxBodyBytes: 1000, requestTimeoutMs: 400 });
});
after(() => server.close());

async function stillServing(): Promise<void> {
  const r = await rawExchange(server.port, ['GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.equal(r.statuses[0], 200, 'the server answers the next request');
}

const cases: Array<{ name: string; parts: string[]; status: number; code?: string; gapMs?: number }> = [
  { name: 'malformed request line', parts: ['GARBAGE\r\n\r\n'], status: 400 },
  { name: 'request line with a bad version', parts: ['GET / HTTP/9.9x\r\nHost: x\r\n\r\n'], status: 400 },
  { name: 'obsolete header folding', parts: ['GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n'], status: 400 },
  { name: 'two different Content-Length headers', parts: ['POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'], status: 400 },
  { name: 'Content-Length and Transfer-Encoding: chunked together', parts: ['POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'], status: 400 },
  { name: 'oversized headers', parts: [`GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`], status: 431, code: 'HPE_HEADER_OVERFLOW' },
  { name: 'declared body over maxBodyBytes', parts: ['POST /anything HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n'], status: 413 },
  { name: 'chunked body growing past maxBodyBytes', parts: ['POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', `800\r\n${'a'.repeat(0x800)}\r\n`], status: 413, gapMs: 20 },
  { name: 'slowloris: headers never finished', parts: ['GET /hello HTTP/1.1\r\nHost: x\r\n'], status: 408, code: 'ERR_HTTP_REQUEST_TIMEOUT' },
];

for (const c of cases) {
  test(`${c.name} → ${c.status}, traced, and the server keeps serving`, async () => {
    const before = sink.events.length;
    const r = await rawExchange(server.port, c.parts, { waitMs: 3000, gapMs: c.gapMs ?? 0 });
    assert.equal(r.statuses[0], c.status, r.text);
    const events = sink.events.slice(before).filter((e) => e.kind === 'client-error' || e.kind === 'limit' || (e.kind === 'response' && e.summary.startsWith(String(c.status))));
    assert.ok(events.length > 0, 'a trace event names what happened');
    if (c.code) assert.ok(events.some((e) => e.meta?.code === c.code), `trace event with code ${c.code}`);
    await stillServing();
  });
}

test('the limits were counted by name', () => {
  assert.ok((server.stats.limits.maxHeaderBytes ?? 0) >= 1);
  assert.ok((server.stats.limits.maxBodyBytes ?? 0) >= 2);
  assert.ok((server.stats.limits.requestTimeoutMs ?? 0) >= 1);
  assert.ok(server.stats.parseErrors >= 4);
});

test('an invalid option throws a TypeError naming it', async () => {
  await assert.rejects(startHttpServer({ maxBodyBytes: -1 }), (e: Error & { code?: string; option?: string }) => e instanceof TypeError && e.code === 'WL_ERR_INVALID_OPTION' && e.option === 'maxBodyBytes');
  await assert.rejects(startHttpServer({ connectTargets: ['nope'] }), (e: Error & { option?: string }) => e.option === 'connectTargets');
});
