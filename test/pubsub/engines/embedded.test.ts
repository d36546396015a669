import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../../../pubsub/engines/index.ts';
import type { Engine } from '../../../pubsub/engines/types.ts';
import { engineConformance } from './conformance.ts';

engineConformance('embedded in memory', async () => {
  const engine = await createEngine({ kind: 'embedded', dir: null });
  return { engine, cleanup: () => engine.close() };
});

/** The file engine: a temp folder per test; `restart` closes the engine and opens a new one on the same folder. */
async function onFiles(): Promise<{ engine: Engine; restart(): Promise<Engine>; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'wl-engine-'));
  let engine: Engine = await createEngine({ kind: 'embedded', dir, fsync: 'batch' });
  return {
    engine,
    async restart() {
      await engine.close();
      engine = await createEngine({ kind: 'embedded', dir, fsync: 'batch' });
      return engine;
    },
    async cleanup() {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

engineConformance('embedded on files', onFiles, { restart: true });
