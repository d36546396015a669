/**
 * mqtt-packet logs through the `debug` package: some fifteen `debug(...)` calls per parsed PUBLISH and more per
 * generated packet. Disabled, each still costs a rest-argument array and the `enabled` getter (measured: a third of
 * the parser's time). Imported before mqtt-packet (framing.ts), this hands mqtt-packet's namespaces a no-op logger
 * when they are disabled (DEBUG unset or not matching `mqtt-packet:*`) at load time; with DEBUG=mqtt-packet:* the
 * real logger stays. mqtt-packet itself is not changed: only the `debug` export it requires is wrapped, and every
 * other namespace gets debug's own logger. If mqtt-packet was loaded before this module, nothing changes.
 */
import { createRequire } from 'node:module';

type Debugger = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string; extend?: unknown };
type CreateDebug = ((namespace: string) => Debugger) & Record<string | symbol, unknown>;

const QUIET = Symbol.for('wirelab.quietDebug');

function quietDebug(): void {
  const require = createRequire(import.meta.url);
  let id: string;
  try {
    id = require.resolve('debug', { paths: [require.resolve('mqtt-packet')] });
  } catch {
    return; // no separate debug package: nothing to wrap
  }
  require(id);
  const mod = require.cache[id];
  const real = mod?.exports as CreateDebug | undefined;
  if (!mod || typeof real !== 'function' || real[QUIET]) return;
  const wrapped = function createDebug(namespace: string): Debugger {
    const d = real(namespace);
    if (!namespace.startsWith('mqtt-packet:') || d.enabled) return d;
    const noop = (() => undefined) as unknown as Debugger;
    noop.enabled = false;
    noop.namespace = namespace;
    return noop;
  } as unknown as CreateDebug;
  Object.assign(wrapped, real);
  wrapped[QUIET] = true;
  mod.exports = wrapped;
}

quietDebug();
