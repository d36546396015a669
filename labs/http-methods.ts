import { defineLab } from '../core/lab/index.ts';
import { createHttpClient } from '../clients/http.ts';
import { startHttpServer } from '../servers/http/index.ts';
import { startTcpServer } from '../servers/tcp/index.ts';
import { rawExchange, rawHeader } from './_raw-http.ts';

export default defineLab({
  id: 'http-methods',
  title: 'The nine HTTP methods against a real server',
  concept: 'Each method means something different: safe or not, idempotent or not, a body or none, a tunnel.',
  protocols: ['http', 'tcp'],
  timeoutMs: 60_000,
  async run(ctx) {
    const echo = await ctx.start(startTcpServer({ mode: 'echo', framing: 'line', tracer: ctx.tracer }));
    // The HTTP servers record what they parsed (and still honour --trace): the last claim reads the methods from there.
    const seen = ctx.recorder();
    const server = await ctx.start(startHttpServer({ tracer: seen.tracer, connectTargets: [`127.0.0.1:${echo.port}`] }));
    const traceOn = await ctx.start(startHttpServer({ tracer: seen.tracer, allowTrace: true }));
    const client = await createHttpClient({ tracer: ctx.tracer });
    ctx.defer(() => client.close());
    const u = (path: string, base = server.url): string => base + path;
    const rows: Array<Array<string | number>> = [];
    const row = (method: string, path: string, status: number, body: number, header: string, note: string): void => {
      rows.push([method, path, status, body, header, note]);
    };
    const count = async (): Promise<number> => Object.keys((await client.request(u('/resources'))).json<object>()).length;

    // GET and HEAD: the same headers, and HEAD without the body.
    const get = await client.request(u('/bytes/1000'));
    const head = await client.request(u('/bytes/1000'), { method: 'HEAD' });
    row('GET', '/bytes/1000', get.status, get.bodyBytes, `Content-Length: ${get.headers['content-length']}`, 'safe, idempotent');
    row('HEAD', '/bytes/1000', head.status, head.bodyBytes, `Content-Length: ${head.headers['content-length']}`, 'the headers of a GET, no body');
    ctx.claim('GET returns the body; HEAD returns the same headers and no body', get.bodyBytes === 1000 && head.bodyBytes === 0 && head.headers['content-length'] === '1000',
      `GET ${get.bodyBytes} B, HEAD ${head.bodyBytes} B with Content-Length ${head.headers['content-length']}`);

    // POST twice: two resources. PUT twice: one state.
    const before = await count();
    const p1 = await client.request(u('/resources'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"a"}' });
    const p2 = await client.request(u('/resources'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"a"}' });
    const afterPost = await count();
    row('POST', '/resources', p1.status, p1.bodyBytes, `Location: ${p1.headers.location}`, 'not idempotent');
    row('POST', '/resources (again)', p2.status, p2.bodyBytes, `Location: ${p2.headers.location}`, 'a second resource');
    ctx.claim('POST is not idempotent: the same POST twice made two resources', p1.status === 201 && p2.status === 201 && afterPost - before === 2 && p1.headers.location !== p2.headers.location,
      `${before} → ${afterPost} resources, ${p1.headers.location} and ${p2.headers.location}`);

    const put1 = await client.request(u('/resources/profile'), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"ada","phone":"123"}' });
    const state1 = (await client.request(u('/resources/profile'))).text();
    const put2 = await client.request(u('/resources/profile'), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"ada","phone":"123"}' });
    const state2 = (await client.request(u('/resources/profile'))).text();
    const afterPut = await count();
    row('PUT', '/resources/profile', put1.status, put1.bodyBytes, `Location: ${put1.headers.location ?? '-'}`, 'created');
    row('PUT', '/resources/profile (again)', put2.status, put2.bodyBytes, '-', 'replaced with the same: one state');
    ctx.claim('PUT is idempotent: the same PUT twice leaves one resource in one state', put1.status === 201 && put2.status === 200 && state1 === state2 && afterPut === afterPost + 1,
      `${put1.status} then ${put2.status}; ${afterPost} → ${afterPut} resources; state unchanged: ${state1 === state2}`);

    const patch = await client.request(u('/resources/profile'), { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"phone":"456"}' });
    const patched = patch.json<{ value: { name: string; phone: string } }>().value;
    row('PATCH', '/resources/profile', patch.status, patch.bodyBytes, '-', 'only the phone changed');
    ctx.claim('PATCH changes only the fields it sends', patch.status === 200 && patched.name === 'ada' && patched.phone === '456', JSON.stringify(patched));

    const del1 = await client.request(u('/resources/profile'), { method: 'DELETE' });
    const del2 = await client.request(u('/resources/profile'), { method: 'DELETE' });
    const gone = await client.request(u('/resources/profile'));
    row('DELETE', '/resources/profile', del1.status, del1.bodyBytes, '-', 'deleted: 204, no body');
    row('DELETE', '/resources/profile (again)', del2.status, del2.bodyBytes, '-', 'same state (gone), another status');
    ctx.claim('DELETE is idempotent in state (gone either way), not in status (204, then 404)', del1.status === 204 && del2.status === 404 && gone.status === 404,
      `${del1.status} then ${del2.status}; GET after: ${gone.status}`);

    const opts = await client.request(u('/resources/1'), { method: 'OPTIONS' });
    row('OPTIONS', '/resources/1', opts.status, opts.bodyBytes, `Allow: ${opts.headers.allow}`, 'what this resource accepts');
    const allow = String(opts.headers.allow ?? '').split(', ');
    ctx.claim('OPTIONS lists the methods a resource accepts in Allow', opts.status === 204 && ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].every((m) => allow.includes(m)) && !allow.includes('POST'),
      `Allow: ${opts.headers.allow}`);

    // TRACE: off (405 with Allow), then on, where it reflects the Cookie and Authorization it was sent.
    const secrets = { cookie: 'session=s3cr3t', authorization: 'Bearer t0k3n' };
    const traceOff = await client.request(u('/anything'), { method: 'TRACE', headers: secrets });
    const traceOnRes = await client.request(u('/anything', traceOn.url), { method: 'TRACE', headers: secrets });
    row('TRACE', '/anything (allowTrace=false)', traceOff.status, traceOff.bodyBytes, `Allow: ${traceOff.headers.allow}`, 'off by default');
    row('TRACE', '/anything (allowTrace=true)', traceOnRes.status, traceOnRes.bodyBytes, `Content-Type: ${traceOnRes.headers['content-type']}`, 'reflects Cookie and Authorization');
    ctx.claim('TRACE is off by default: 405 with an Allow header that leaves it out', traceOff.status === 405 && !String(traceOff.headers.allow).includes('TRACE') && String(traceOff.headers.allow).includes('GET'),
      `${traceOff.status}, Allow: ${traceOff.headers.allow}`);
    ctx.claim('turned on, TRACE echoes the Cookie and Authorization back (why it is off: cross-site tracing)', traceOnRes.status === 200 && traceOnRes.text().includes('s3cr3t') && traceOnRes.text().includes('t0k3n'),
      `${traceOnRes.status}, the body has the cookie: ${traceOnRes.text().includes('s3cr3t')}, the token: ${traceOnRes.text().includes('t0k3n')}`);

    // CONNECT: a tunnel to wirelab's TCP echo server; any other target is refused.
    const tunnel = await rawExchange(server.port, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`, 'ping through the tunnel\n'], {
      gapMs: 50,
      until: (t) => t.includes('ping through the tunnel\n'),
    });
    const refused = await rawExchange(server.port, ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n']);
    row('CONNECT', `127.0.0.1:${echo.port} (tcp echo)`, tunnel.statuses[0] ?? 0, 0, '-', 'a byte tunnel: the echo came back');
    row('CONNECT', 'example.com:443', refused.statuses[0] ?? 0, 0, `Connection: ${rawHeader(refused.text, 'connection')}`, 'not a wirelab server: refused');
    ctx.claim("CONNECT opens a tunnel to the TCP echo server: bytes go through untouched", tunnel.statuses[0] === 200 && tunnel.text.endsWith('ping through the tunnel\n'),
      `${tunnel.statuses[0]} Connection Established, then the echo`);
    ctx.claim('CONNECT to anything but wirelab\'s own servers gets 403 without a connection', refused.statuses[0] === 403, `${refused.statuses[0]}`);

    ctx.table('the nine methods', ['method', 'target', 'status', 'body B', 'header that matters', 'what it shows'], rows);
    const nine = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'];
    const parsed = new Set(seen.events.find({ proto: 'http', kind: 'request' }).map((e) => e.summary.split(' ')[0]!));
    ctx.claim('the servers parsed a request of each of the nine methods (from their own traces)', nine.every((m) => parsed.has(m)),
      `parsed: ${[...parsed].join(' ')}${nine.some((m) => !parsed.has(m)) ? `; never parsed: ${nine.filter((m) => !parsed.has(m)).join(' ')}` : ''}`);
  },
});
