import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { httpRequest } from '../../clients/http.ts';
import type { Har } from '../../core/export/har.ts';
import { runCli } from '../helpers/cli.ts';
import { harErrors } from '../helpers/har.ts';
import { startUp } from '../helpers/up.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wirelab-exports-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('wirelab lab http-methods --har --diagram --report: a valid HAR of both sides, Mermaid and SVG, a report linking them', async () => {
  const [har, mmd, report] = [join(dir, 'hm.har'), join(dir, 'hm.mmd'), join(dir, 'out', 'hm.html')];
  const r = await runCli(['lab', 'http-methods', '--har', har, '--diagram', mmd, '--report', report]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(await readFile(har, 'utf8')) as Har;
  assert.deepEqual(await harErrors(doc), []);
  const methods = (side: string): Set<string> => new Set(doc.log.entries.filter((e) => e._side === side).map((e) => e.request.method));
  // Both ends of wirelab's HTTP client and server are traced; the raw-socket requests (TRACE, CONNECT) only by the server.
  for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) assert.ok(methods('client').has(m) && methods('server').has(m), `${m} on both sides`);
  const text = await readFile(mmd, 'utf8');
  assert.match(text, /^sequenceDiagram\n {2}title http-methods: /);
  assert.match(text, /participant L\d+ as http client\n {2}participant L\d+ as http server/);
  const svg = await readFile(join(dir, 'hm.svg'), 'utf8');
  assert.equal((svg.match(/<g class="arrow/g) ?? []).length, (text.match(/^ {2}L\d+-/gm) ?? []).length);
  const page = await readFile(report, 'utf8');
  assert.match(page, /<a href="\.\.\/hm\.har">/);
  assert.match(page, /<a href="\.\.\/hm\.mmd">/);
  assert.match(page, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" class="wirelab-sequence"/);
  // Nothing to fetch: no src= attribute and no link to another origin.
  assert.doesNotMatch(page, /\ssrc=|href="https?:/);
});

test('wirelab up --har writes the HTTP server side of every exchange when it stops', async () => {
  const har = join(dir, 'up.har');
  const up = await startUp(['--port-base', '0', '--only', 'http', '--har', har]);
  try {
    const http = up.endpoints.find((e) => e.proto === 'http' && e.url?.startsWith('http://'));
    assert.ok(http?.url, JSON.stringify(up.endpoints));
    await httpRequest(`${http.url}/anything?from=test`);
    await httpRequest(`${http.url}/anything`, { method: 'POST', body: 'password=sekrit&x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  } finally {
    assert.equal((await up.stop()).code, 0, up.stderr());
  }
  const doc = JSON.parse(await readFile(har, 'utf8')) as Har;
  assert.deepEqual(await harErrors(doc), []);
  const urls = doc.log.entries.map((e) => `${e._side} ${e.request.method} ${new URL(e.request.url).pathname}`);
  assert.ok(urls.includes('server GET /anything') && urls.includes('server POST /anything'), urls.join(', '));
  const post = doc.log.entries.find((e) => e.request.method === 'POST')!;
  assert.equal(post.request.postData?.text, 'password=****&x=1');
});
