import assert from 'node:assert/strict';
import { test } from 'node:test';
import { playgroundRouter } from '../../servers/http/index.ts';
import { DOCUMENTED_ROUTES, INDEX_PAGE } from '../../servers/http/routes/index-page.ts';

test('the root page documents routes the router serves, each with a try-it form, and points to the dashboard', () => {
  const router = playgroundRouter();
  // Pages registered by other modules (the WebRTC page, wirelab up's dashboard) are not in the playground's table.
  const elsewhere = new Set(['/webrtc', '/_wirelab/']);
  for (const r of DOCUMENTED_ROUTES) {
    if (elsewhere.has(r.path)) continue;
    const method = r.methods === 'any' ? 'GET' : r.methods.split(' ')[0]!;
    const example = r.path.replace(/:[a-z]+/g, (p) => ({ ':codes': '200', ':n': '2', ':s': '1', ':seconds': '60', ':etag': 'abc', ':user': 'u', ':pass': 'p', ':id': '1' })[p] ?? 'x');
    assert.equal(router.match(method, example).kind, 'route', `${method} ${example}`);
  }
  assert.equal((INDEX_PAGE.match(/<form class="try"/g) ?? []).length, DOCUMENTED_ROUTES.length);
  assert.match(INDEX_PAGE, /href="\/_wirelab\/"/);
});
