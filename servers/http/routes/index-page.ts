/**
 * The HTTP playground's root page (httpbin's index is the anchor): every route with a one-line description and a
 * try-it form, grouped by theme, and a pointer to `wirelab up`'s live dashboard at /_wirelab/. Static HTML: the forms
 * are plain GET/POST forms (and one small script for methods a form cannot send), nothing from another origin.
 */

interface RouteDoc {
  methods: string;
  /** The path as the router has it; `example` fills its parameters for the try-it form. */
  path: string;
  example: string;
  does: string;
}

const GROUPS: Array<[string, RouteDoc[]]> = [
  ['Request inspection', [
    { methods: 'GET POST PUT PATCH DELETE', path: '/anything', example: '/anything?x=1', does: 'the request as the server parsed it: method, args, headers, body, form, json' },
    { methods: 'POST PUT', path: '/echo', example: '/echo', does: 'the body back as it came, with its Content-Type (the smallest round trip)' },
    { methods: 'GET', path: '/headers', example: '/headers', does: 'the request headers' },
    { methods: 'GET', path: '/ip', example: '/ip', does: "the client's address" },
    { methods: 'GET', path: '/user-agent', example: '/user-agent', does: 'the User-Agent header' },
    { methods: 'GET', path: '/hello', example: '/hello', does: 'a plain-text hello' },
    { methods: 'GET', path: '/json', example: '/json', does: 'a small JSON document' },
    { methods: 'GET', path: '/uuid', example: '/uuid', does: 'a random UUID' },
  ]],
  ['Status codes and errors', [
    { methods: 'any', path: '/status/:codes', example: '/status/200:3,500:1', does: 'answers one of the codes (weights after a colon)' },
    { methods: 'GET', path: '/teapot', example: '/teapot', does: '418, as RFC 2324 says' },
    { methods: 'GET', path: '/boom', example: '/boom', does: 'a handler that throws: 500, and the server keeps serving' },
  ]],
  ['Redirects', [
    { methods: 'any', path: '/redirect/:n', example: '/redirect/3', does: 'n redirects (302, or ?status=301|303|307|308) ending at /anything' },
    { methods: 'any', path: '/absolute-redirect/:n', example: '/absolute-redirect/2', does: 'the same with absolute Location URLs' },
    { methods: 'any', path: '/relative-redirect/:n', example: '/relative-redirect/2', does: 'the same with relative Location URLs' },
    { methods: 'any', path: '/redirect-to', example: '/redirect-to?url=/anything&status_code=307', does: 'one redirect to url with status_code' },
    { methods: 'GET', path: '/docs', example: '/docs', does: 'a 301 to /docs/ (a folder without its slash)' },
  ]],
  ['Timing and streaming', [
    { methods: 'any', path: '/delay/:s', example: '/delay/1', does: 'answers after s seconds' },
    { methods: 'GET', path: '/drip', example: '/drip?numbytes=10&duration=2', does: 'numbytes bytes spread over duration seconds' },
    { methods: 'GET', path: '/stream/:n', example: '/stream/5', does: 'n JSON lines, chunked' },
    { methods: 'GET', path: '/bytes/:n', example: '/bytes/1024', does: 'n pseudo-random bytes; honours Range (206, 416, multipart/byteranges)' },
    { methods: 'GET', path: '/sha256/:n', example: '/sha256/1024', does: 'the SHA-256 of /bytes/n, to check a download' },
    { methods: 'GET', path: '/sse', example: '/sse?count=5&interval=500', does: 'a Server-Sent Events ticker' },
    { methods: 'GET POST', path: '/events', example: '/events?since=0', does: 'a feed: poll, long poll (&wait=ms), POST to publish' },
    { methods: 'GET', path: '/events/stream', example: '/events/stream', does: 'the same feed as SSE' },
  ]],
  ['State: cookies, auth, caching, resources', [
    { methods: 'GET', path: '/cookies', example: '/cookies', does: 'the cookies the client sent' },
    { methods: 'GET', path: '/cookies/set', example: '/cookies/set?k=v', does: 'sets cookies from the query, then redirects to /cookies' },
    { methods: 'GET', path: '/cookies/delete', example: '/cookies/delete?k', does: 'expires the named cookies' },
    { methods: 'GET', path: '/basic-auth/:user/:pass', example: '/basic-auth/user/pass', does: '200 with the right Basic credentials, else 401' },
    { methods: 'GET', path: '/bearer', example: '/bearer', does: '200 with a known Authorization: Bearer token, else 401' },
    { methods: 'GET', path: '/admin', example: '/admin', does: 'Basic auth: 401 without credentials, 403 for a user who is not admin' },
    { methods: 'GET', path: '/cache', example: '/cache', does: '304 to If-Modified-Since / If-None-Match, else 200 with validators' },
    { methods: 'GET', path: '/cache/:seconds', example: '/cache/60', does: 'Cache-Control: max-age=seconds' },
    { methods: 'GET', path: '/etag/:etag', example: '/etag/abc', does: 'If-None-Match / If-Match against this ETag' },
    { methods: 'GET POST', path: '/resources', example: '/resources', does: 'a small REST collection: list, create (201)' },
    { methods: 'GET PUT PATCH DELETE', path: '/resources/:id', example: '/resources/1', does: 'one resource: read, replace, merge, delete' },
  ]],
  ['Encoding, upload, gateway', [
    { methods: 'GET', path: '/gzip', example: '/gzip', does: 'a gzip-encoded body' },
    { methods: 'GET', path: '/deflate', example: '/deflate', does: 'a deflate-encoded body' },
    { methods: 'GET', path: '/brotli', example: '/brotli', does: 'a brotli-encoded body' },
    { methods: 'GET', path: '/compressed', example: '/compressed', does: 'the encoding Accept-Encoding asks for' },
    { methods: 'POST PUT', path: '/upload', example: '/upload', does: 'counts and hashes the uploaded body (maxBodyBytes: 413)' },
    { methods: 'GET', path: '/gateway', example: '/gateway?delay=100', does: 'proxies to a slow upstream: 502 / 504 past gatewayTimeoutMs' },
  ]],
  ['Pages', [
    { methods: 'GET', path: '/webrtc', example: '/webrtc', does: 'the WebRTC demo page (wirelab up)' },
    { methods: 'GET', path: '/_wirelab/', example: '/_wirelab/', does: "the live dashboard: servers, traffic, pub/sub, impairments, mail (wirelab up's HTTP server)" },
  ]],
];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function form(r: RouteDoc): string {
  const methods = r.methods === 'any' ? ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] : r.methods.split(' ');
  const options = methods.map((m) => `<option>${m}</option>`).join('');
  return `<form class="try" action="${esc(r.example)}" method="get"><select name="_m">${options}</select><input name="_p" value="${esc(r.example)}" size="28"><button>try</button></form>`;
}

/** Every documented route (path and methods), for the test that checks the page against the router. */
export const DOCUMENTED_ROUTES: ReadonlyArray<{ path: string; methods: string }> = GROUPS.flatMap(([, list]) => list.map((r) => ({ path: r.path, methods: r.methods })));

export const INDEX_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wirelab http</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1em; } td, th { text-align: left; padding: .2em .5em; border-bottom: 1px solid #eee; vertical-align: top; }
code { font: 13px ui-monospace, monospace; } .m { color: #667; font-size: 12px; white-space: nowrap; } form.try { margin: 0; white-space: nowrap; }
pre#out { background: #f6f6f8; padding: .6em; white-space: pre-wrap; max-height: 30em; overflow: auto; }
.dash { background: #eef5ff; padding: .6em 1em; border-radius: .4em; }
</style></head><body>
<h1>wirelab HTTP playground</h1>
<p class="dash">Watching traffic? Open the <a href="/_wirelab/">live dashboard</a> (under <code>wirelab up</code>): every request below
shows up there as it happens, with the TCP, SMTP, MQTT... traffic of the other servers. <code>curl -i ${'{this origin}'}/anything</code> works as well as the forms.</p>
${GROUPS.map(([title, list]) => `<h2>${esc(title)}</h2><table><tr><th>route</th><th>methods</th><th>what it does</th><th>try it</th></tr>
${list.map((r) => `<tr><td><a href="${esc(r.example)}"><code>${esc(r.path)}</code></a></td><td class="m">${esc(r.methods)}</td><td>${esc(r.does)}</td><td>${form(r)}</td></tr>`).join('\n')}</table>`).join('\n')}
<h2>Answer</h2><pre id="out">(the answer to a try-it form shows here: status line, headers, body)</pre>
<script>
for (const f of document.querySelectorAll('form.try')) f.onsubmit = async (ev) => {
  ev.preventDefault();
  const method = f.elements._m.value, path = f.elements._p.value, out = document.getElementById('out');
  out.textContent = method + ' ' + path + ' ...';
  try {
    const r = await fetch(path, { method, redirect: 'manual', ...(method === 'GET' || method === 'HEAD' ? {} : { body: JSON.stringify({ hello: 'wirelab' }), headers: { 'content-type': 'application/json' } }) });
    const head = [...r.headers].map(([k, v]) => k + ': ' + v).join('\\n');
    const body = r.type === 'opaqueredirect' ? '(a redirect: the browser does not show it to a script; try curl -i)' : await r.text();
    out.textContent = r.status + ' ' + r.statusText + '\\n' + head + '\\n\\n' + body.slice(0, 20000);
  } catch (err) { out.textContent = String(err); }
};
</script>
</body></html>
`;
