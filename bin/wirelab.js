#!/usr/bin/env node
// The `wirelab` command. In the checkout (bin/wirelab.ts is beside this file) the CLI runs from its TypeScript
// sources through tsx, with the "wirelab-source" export condition so 'wirelab/...' resolves to the .ts files too.
// In the installed package (only this file and dist/ are shipped) it is the compiled CLI on plain Node; tsx is loaded
// only when a lab file of the user's is TypeScript (core/lab/load.ts).
import { existsSync } from 'node:fs';
import { register } from 'node:module';

// The parent this process started under, read before anything loads (bin/stop.ts: under npm, its going away stops `up`).
globalThis.wirelabStartedUnder = process.ppid;

if (existsSync(new URL('./wirelab.ts', import.meta.url))) {
  const tsx = await import('tsx/esm/api');
  tsx.register();
  // Registered after tsx, so it runs first: adds the condition, then hands on to tsx.
  register('./source-condition.js', import.meta.url);
  await import('./wirelab.ts');
} else {
  await import('../dist/bin/wirelab.js');
}
