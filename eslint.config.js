import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of ../shared/DESIGN.md, lowest first: core -> protocols -> servers, clients -> pubsub -> apps -> labs -> bin.
 * A folder may import only from the layers below it (and itself); servers and clients sit side by side and import
 * neither each other nor anything above. No server dials out through a client today (the HTTP gateway and CONNECT
 * tunnel use node:net), so there is no exception. What each folder may not import, by top-level folder name:
 */
const FORBIDDEN = {
  core: ['protocols', 'servers', 'clients', 'pubsub', 'apps', 'labs', 'bin'],
  protocols: ['servers', 'clients', 'pubsub', 'apps', 'labs', 'bin'],
  servers: ['clients', 'pubsub', 'apps', 'labs', 'bin'],
  clients: ['servers', 'pubsub', 'apps', 'labs', 'bin'],
  pubsub: ['apps', 'labs', 'bin'],
  apps: ['labs', 'bin'],
  labs: ['bin'],
};

/** One no-restricted-imports block per layer; relative paths (../../servers/...) and the package's own name count. */
export const layerRules = Object.entries(FORBIDDEN).map(([layer, above]) => ({
  files: [`${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [{
        // Test code, benches and scripts are never imported by the library either.
        regex: `^(?:(?:\\.\\./)+|wirelab/)(?:${[...above, 'test', 'bench', 'scripts'].join('|')})(?:/|$)`,
        message: `layers (DESIGN.md): ${layer}/ may not import from ${above.join(', ')} (nor test, bench, scripts).`,
      }],
    }],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', '.wirelab/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortController: 'readonly', performance: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // Only the CLI, the tracer's terminal sink and scripts may write to the console.
    files: ['bin/**', 'bench/**', 'core/trace/pretty.ts', 'scripts/**', 'examples/**'],
    rules: { 'no-console': 'off' },
  },
  ...layerRules,
);
