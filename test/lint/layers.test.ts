import assert from 'node:assert/strict';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { CHECKOUT, node, tempProject } from '../helpers/project.ts';

// One forbidden import per layer boundary, and imports that must stay allowed. `import type` counts too: a type-only
// import from a client is how core/impair/kernel/messages.ts used to reach above core.
const FORBIDDEN: Record<string, string> = {
  'core/x.ts': "import type { TcpClient } from '../clients/tcp.ts';\nexport type T = TcpClient;\n",
  'core/deep/y.ts': "export { startTcpServer } from '../../servers/tcp/index.ts';\n",
  'protocols/x.ts': "import { startWsServer } from '../servers/ws/index.ts';\nexport const s = startWsServer;\n",
  'clients/x.ts': "import { describeEnd } from '../servers/tcp/index.ts';\nexport const d = describeEnd;\n",
  'servers/y/x.ts': "import { connectTcp } from '../../clients/tcp.ts';\nexport const c = connectTcp;\n",
  'servers/z/x.ts': "import { defineLab } from '../../labs/x.ts';\nexport const l = defineLab;\n",
  'labs/x.ts': "import { main } from '../bin/wirelab.ts';\nexport const m = main;\n",
  'core/self.ts': "import { connectTcp } from 'wirelab/clients/tcp';\nexport const c = connectTcp;\n",
};
const ALLOWED: Record<string, string> = {
  'servers/ok/x.ts': "import { describeEnd } from '../../protocols/tcp.ts';\nimport { percentile } from '../../core/stats.ts';\nexport const a = [describeEnd, percentile];\n",
  'clients/ok.ts': "import { acceptFor } from '../protocols/ws.ts';\nexport const a = acceptFor;\n",
  'labs/ok.ts': "import { startTcpServer } from '../servers/tcp/index.ts';\nimport { connectTcp } from '../clients/tcp.ts';\nexport const a = [startTcpServer, connectTcp];\n",
  'bin/ok.ts': "import { x } from '../labs/x.ts';\nexport const a = x;\n",
};

test('the layer rules fail lint, naming the rule, for a forbidden import in a copy of the config', async (t) => {
  const project = await tempProject(false);
  t.after(() => project.remove());
  await copyFile(join(CHECKOUT, 'eslint.config.js'), join(project.dir, 'eslint.config.js'));
  await writeFile(join(project.dir, 'package.json'), '{ "type": "module" }\n');
  await symlink(join(CHECKOUT, 'node_modules'), join(project.dir, 'node_modules'), 'dir');
  for (const [file, text] of Object.entries({ ...FORBIDDEN, ...ALLOWED })) {
    await mkdir(join(project.dir, file, '..'), { recursive: true });
    await writeFile(join(project.dir, file), text);
  }
  // The eslint a user of the checkout runs (`npm run check`), with the copied config.
  const ran = await node([join(CHECKOUT, 'node_modules', 'eslint', 'bin', 'eslint.js'), '--format', 'json', '.'], project.dir, 120_000);
  assert.equal(ran.code, 1, `eslint exits 1 on the forbidden imports: ${ran.stderr}`);
  const results = JSON.parse(ran.stdout) as Array<{ filePath: string; messages: Array<{ ruleId: string | null; message: string }> }>;
  const byFile = new Map(results.map((r) => [r.filePath.slice(project.dir.length + 1), r.messages]));
  for (const file of Object.keys(FORBIDDEN)) {
    const rules = (byFile.get(file) ?? []).map((m) => m.ruleId);
    assert.deepEqual(rules, ['no-restricted-imports'], `${file}: ${JSON.stringify(byFile.get(file))}`);
    assert.match(byFile.get(file)![0]!.message, /layers \(DESIGN\.md\)/);
  }
  for (const file of Object.keys(ALLOWED)) assert.deepEqual(byFile.get(file) ?? [], [], `${file} is allowed`);
});

test('the real tree keeps its layers (the layer rules alone, over every layered folder)', async () => {
  const { layerRules } = (await import(pathToFileURL(join(CHECKOUT, 'eslint.config.js')).href)) as { layerRules: object[] };
  const eslint = new ESLint({
    cwd: CHECKOUT,
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...(layerRules as never[])],
  });
  const results = await eslint.lintFiles(['core', 'protocols', 'servers', 'clients', 'labs']);
  assert.ok(results.length > 150, `linted ${results.length} files`);
  // Only this rule's findings: the rest of the config (and its disable comments) is `npm run check`'s business.
  const broken = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${r.filePath.slice(CHECKOUT.length)}:${m.line} ${m.message}`));
  assert.deepEqual(broken, []);
});
