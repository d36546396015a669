/**
 * `createEngine`: the one way the broker, the CLI and the labs get an Engine. `embedded` runs in this process on
 * pubsub/log; `jetstream` (issue 13) adds its kind here.
 */
import { InvalidOptionError } from '../../core/errors.ts';
import { createEmbeddedEngine, type EmbeddedEngineOptions } from './embedded/index.ts';
import type { JetStreamEngineOptions } from './jetstream/index.ts';
import type { Engine } from './types.ts';

export type EngineOptions = ({ kind: 'embedded' } & EmbeddedEngineOptions) | ({ kind: 'jetstream' } & JetStreamEngineOptions);

export const ENGINE_KINDS = ['embedded', 'jetstream'] as const;

export async function createEngine(options: EngineOptions = { kind: 'embedded' }): Promise<Engine> {
  switch (options.kind) {
    case 'embedded': {
      const { kind: _kind, ...rest } = options;
      return createEmbeddedEngine(rest);
    }
    case 'jetstream': {
      const { kind: _kind, ...rest } = options;
      // Loaded on demand: the nats client is not needed by the embedded engine.
      const { createJetStreamEngine } = await import('./jetstream/index.ts');
      return createJetStreamEngine(rest);
    }
    default:
      throw new InvalidOptionError('kind', `one of ${ENGINE_KINDS.join(', ')}`, (options as { kind: unknown }).kind);
  }
}

export { createEmbeddedEngine };
export type { EmbeddedEngineOptions, JetStreamEngineOptions };
