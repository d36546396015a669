import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defineLab, LABS_DIR } from '../core/lab/index.ts';
import { isModuleFile, MODULE_EXT } from '../core/paths.ts';
import type { HandshakeRow, HandshakeRows } from './handshakes/types.ts';

/** Row providers: labs/handshakes/<area>.ts, transport first, then the others by name. */
async function providers(): Promise<Array<[string, HandshakeRows]>> {
  const dir = join(LABS_DIR, 'handshakes');
  const files = (await readdir(dir)).filter((f) => isModuleFile(f) && f !== `types${MODULE_EXT}`);
  files.sort((a, b) => (a === `transport${MODULE_EXT}` ? -1 : b === `transport${MODULE_EXT}` ? 1 : a.localeCompare(b)));
  const out: Array<[string, HandshakeRows]> = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default: HandshakeRows };
    out.push([f.slice(0, -3), mod.default]);
  }
  return out;
}

export default defineLab({
  id: 'handshakes',
  title: 'What it costs before the first byte',
  concept: 'Every protocol pays round trips before application data: TCP one, TLS 1.2 two more, TLS 1.3 one; each row counts them from what it saw.',
  protocols: ['tcp', 'tls'],
  async run(ctx) {
    const rows: Array<HandshakeRow & { area: string }> = [];
    for (const [area, rowsOf] of await providers()) {
      for (const row of await rowsOf(ctx)) rows.push({ area, ...row });
    }
    ctx.table(
      'handshakes (rows with an added delay went through a relay holding each chunk that long each way)',
      ['handshake', 'round trips', 'time', 'added delay', 'steps'],
      rows.map((r) => [
        r.handshake,
        Number.isNaN(r.roundTrips) ? 'not observed' : r.roundTrips,
        `${r.ms.toFixed(1)} ms`,
        r.addedDelayMs ? `${r.addedDelayMs} ms each way` : 'none (loopback)',
        r.steps,
      ]),
    );
  },
});
