#!/usr/bin/env node
// `npm run build` (and prepack): dist/ from scratch, so a module deleted from the sources is not shipped stale, then
// tsc with tsconfig.build.json (ES modules + .d.ts; './x.ts' imports rewritten to './x.js').
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
