/**
 * `createEngine`: the one way the broker, the CLI and the labs get an Engine. `embedded` runs in this process on
 * pubsub/log; `jetstream` (issue 13) adds its kind here.
 */
import { InvalidOptionError } from '../../core/errors.ts';
import { createEmbeddedEngine, type EmbeddedEngineOptions } from './embedded/index.ts';
import type { Engine } from './types.ts';

export type EngineOptions = { kind: 'embedded' } & EmbeddedEngineOptions;

export const ENGINE_KINDS = ['embedded'] as const;

export async function createEngine(options: EngineOptions = { kind: 'embedded' }): Promise<Engine> {
  const { kind, ...rest } = options;
  switch (kind) {
    case 'embedded':
      return createEmbeddedEngine(rest);
    default:
      throw new InvalidOptionError('kind', `one of ${ENGINE_KINDS.join(', ')}`, kind);
  }
}

export { createEmbeddedEngine };
export type { EmbeddedEngineOptions };
