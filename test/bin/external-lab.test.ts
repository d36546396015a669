import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI } from '../helpers/cli.ts';
import { node, tempProject } from '../helpers/project.ts';

// A lab of a user's own, with a helper beside it: both are .ts files in a folder with no package.json.
const LAB = `import { defineLab } from 'wirelab';
import { startUdpServer } from 'wirelab/servers/udp';
import { openUdp } from 'wirelab/clients/udp';
import { greeting } from './helper.ts';

export default defineLab({
  id: 'outside',
  title: 'a lab outside the checkout',
  concept: 'imports from wirelab by name',
  protocols: ['udp'],
  async run(ctx) {
    const server = await ctx.start(startUdpServer({ port: 0 }));
    const client = await openUdp({ port: server.port });
    ctx.defer(() => client.close());
    const echo = await client.echo(greeting);
    ctx.claim('the UDP echo came back', echo.seq === 0, greeting);
  },
});
`;

async function writeLab(dir: string, name: string): Promise<void> {
  await writeFile(join(dir, name), LAB);
  await writeFile(join(dir, 'helper.ts'), "export const greeting: string = 'hello from outside';\n");
}

test("a .ts lab in a folder with no package.json and no node_modules runs from the checkout's CLI (import from 'wirelab')", async (t) => {
  const p = await tempProject(false);
  t.after(() => p.remove());
  await writeLab(p.dir, 'my-lab.ts');
  const r = await node([CLI, 'lab', join(p.dir, 'my-lab.ts'), '--json'], p.dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(JSON.parse(r.stdout).ok, true);
});

test('a .mts lab runs the same way', async (t) => {
  const p = await tempProject(false);
  t.after(() => p.remove());
  await writeLab(p.dir, 'my-lab.mts');
  const r = await node([CLI, 'lab', './my-lab.mts', '--json'], p.dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test("in a project with node_modules/wirelab (npm install /path/to/wirelab), the project's own wirelab runs the lab", async (t) => {
  const p = await tempProject(true);
  t.after(() => p.remove());
  await writeLab(p.dir, 'my-lab.ts');
  // What `npx wirelab` runs: the bin of the installed package.
  const r = await node([join(p.dir, 'node_modules', 'wirelab', 'bin', 'wirelab.js'), 'lab', './my-lab.ts', '--json'], p.dir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('a lab file that does not load is one line naming the file, exit 2; a missing file names its path', async (t) => {
  const p = await tempProject(false);
  t.after(() => p.remove());
  await writeFile(join(p.dir, 'broken.ts'), "import { nothing } from 'wirelab/servers/gopher';\nexport default nothing;\n");
  const broken = await node([CLI, 'lab', './broken.ts'], p.dir);
  assert.equal(broken.code, 2);
  assert.equal(broken.stderr.trim().split('\n').length, 1, broken.stderr);
  assert.match(broken.stderr, /broken\.ts could not be loaded/);
  const missing = await node([CLI, 'lab', './nope.ts'], p.dir);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no lab file at .*nope\.ts/);
});
