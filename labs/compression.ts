import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { startTcpProxy } from '../core/impair/index.ts';
import { defineLab } from '../core/lab/index.ts';
import { startTcpRelay } from '../core/relay.ts';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { startHttpServer } from '../servers/http/index.ts';

/** The resource: this many KiB of access-log text from the server's /compressible/:kb. */
const KB = 128;
/** The slow link's downstream rate, in KB/s (the impairment proxy's bandwidth toxic). */
const RATE_KBPS = 500;
const CURL_PEER = 'curl (Debian package curl; npm run peers installs it)';

interface Fetched {
  status: number;
  coding: string;
  /** The body as it crossed the wire, and decoded. */
  wireBody: number;
  decoded: Buffer;
  ms: number;
}

/** One GET on a fresh connection with this Accept-Encoding; the body decoded here, checked by the caller. */
function fetchOnce(port: number, accept: string): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path: `/compressible/${KB}`, agent: false, headers: { 'accept-encoding': accept, connection: 'close' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.once('error', reject);
      res.once('end', () => {
        const ms = performance.now() - t0;
        const raw = Buffer.concat(parts);
        const coding = String(res.headers['content-encoding'] ?? 'identity');
        try {
          const decoded = coding === 'gzip' ? gunzipSync(raw) : coding === 'br' ? brotliDecompressSync(raw) : raw;
          resolve({ status: res.statusCode ?? 0, coding, wireBody: raw.length, decoded, ms });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.once('error', reject);
    req.end();
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 12);

export default defineLab({
  id: 'compression',
  title: 'Compression: the same resource as identity, gzip and br, counted on the wire and timed',
  concept: 'A server compresses a response when the client says it can decode it (Accept-Encoding): far fewer bytes on the wire, paid for in CPU, which wins when the link is the bottleneck.',
  protocols: ['http'],
  timeoutMs: 30_000,
  async run(ctx) {
    const server = await ctx.start(startHttpServer({ tracer: ctx.tracer }));
    // A tap counting what crossed it, per connection and direction (each fetch is a connection of its own).
    const wire = new Map<number, { up: Buffer[]; down: number }>();
    const tap = await ctx.start(
      startTcpRelay({
        target: { port: server.port },
        tracer: ctx.tracer,
        onForward: (dir, chunk, conn) => {
          const w = wire.get(conn) ?? { up: [], down: 0 };
          wire.set(conn, w);
          if (dir === '>') w.up.push(Buffer.from(chunk));
          else w.down += chunk.length;
        },
      }),
    );
    const lastConn = (): number => Math.max(...wire.keys());

    // 1. Loopback through the tap: bytes each coding put on the wire, and the time to the last byte.
    const codings = [
      ['identity', 'identity'],
      ['gzip', 'gzip'],
      ['br', 'br'],
    ] as const;
    const runs: Record<string, Fetched & { onWire: number }> = {};
    for (const [name, accept] of codings) {
      const f = await fetchOnce(tap.port, accept);
      runs[name] = { ...f, onWire: wire.get(lastConn())!.down };
    }
    const id = runs.identity!;
    const gz = runs.gzip!;
    const br = runs.br!;

    // 2. The same three through a link limited to RATE_KBPS downstream (the impairment proxy's bandwidth toxic).
    const slow = await ctx.start(
      startTcpProxy({ name: 'slow-link', upstreamPort: server.port, tracer: ctx.tracer, toxics: [{ name: 'cap', type: 'bandwidth', stream: 'downstream', attributes: { rate: RATE_KBPS } }] }),
    );
    const slowRuns: Record<string, Fetched> = {};
    for (const [name, accept] of codings) slowRuns[name] = await fetchOnce(slow.port, accept);

    ctx.table(
      `GET /compressible/${KB} (${KB} KiB of access-log text), one connection each`,
      ['Accept-Encoding', 'Content-Encoding', 'bytes server → client (tap, headers included)', 'ratio', 'decoded sha256', `loopback ms`, `${RATE_KBPS} KB/s link ms`],
      codings.map(([name]) => {
        const r = runs[name]!;
        return [name, r.coding, r.onWire, `${(r.onWire / id.onWire).toFixed(3)}`, sha(r.decoded), r.ms.toFixed(1), slowRuns[name]!.ms.toFixed(0)];
      }),
    );

    ctx.claim(
      'each client got the coding it asked for, and every body decodes to the same bytes',
      id.coding === 'identity' && gz.coding === 'gzip' && br.coding === 'br' && sha(gz.decoded) === sha(id.decoded) && sha(br.decoded) === sha(id.decoded) && id.decoded.length === KB * 1024,
      `identity ${id.decoded.length} B, gzip → ${gz.decoded.length} B, br → ${br.decoded.length} B, sha256 ${sha(id.decoded)}`,
    );
    ctx.claim(
      'compressed, the same resource crossed the wire in under a third of the bytes; br in fewer than gzip',
      gz.onWire * 3 < id.onWire && br.onWire < gz.onWire,
      `identity ${id.onWire} B, gzip ${gz.onWire} B, br ${br.onWire} B on the tap`,
    );
    // The slow link needs at least identity's bytes / rate; gzip's few bytes leave room for its CPU time.
    const idFloorMs = (id.onWire / (RATE_KBPS * 1000)) * 1000;
    ctx.claim(
      `on a ${RATE_KBPS} KB/s link the gzip response finished first: it had far fewer bytes to push through than identity`,
      slowRuns.gzip!.ms < slowRuns.identity!.ms && slowRuns.identity!.ms >= idFloorMs * 0.9,
      `identity ${slowRuns.identity!.ms.toFixed(0)} ms (its bytes alone need ${idFloorMs.toFixed(0)} ms), gzip ${slowRuns.gzip!.ms.toFixed(0)} ms, br ${slowRuns.br!.ms.toFixed(0)} ms`,
    );
    ctx.note(
      `on loopback there is no bottleneck to save: identity ${id.ms.toFixed(1)} ms, gzip ${gz.ms.toFixed(1)} ms, br ${br.ms.toFixed(1)} ms (brotli's default quality 11 spends the most CPU)`,
    );

    // 3. curl --compressed as an independent client, through the same tap.
    if (spawnSync('sh', ['-c', 'command -v curl'], { stdio: 'ignore' }).status !== 0) {
      if (process.env.CI === 'true') throw new WirelabError(ErrorCodes.LAB_INVALID, `CI=true and the curl row needs ${CURL_PEER}`);
      ctx.note(`not observed: curl --compressed as a second client. It needs ${CURL_PEER}.`);
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'wirelab-compression-'));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    const out = join(dir, 'body');
    const curl = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile('curl', ['-s', '--compressed', '-o', out, '-D', '-', '-w', '%{size_download}', `http://127.0.0.1:${tap.port}/compressible/${KB}`], { timeout: 10_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    const conn = wire.get(lastConn())!;
    const sentHeaders = Buffer.concat(conn.up).toString('latin1');
    const offered = /^accept-encoding: *(.*)$/im.exec(sentHeaders)?.[1]?.trim() ?? '(none)';
    const gotCoding = /^content-encoding: *(\S+)/im.exec(curl.stdout)?.[1] ?? 'identity';
    const downloaded = Number(/(\d+)$/.exec(curl.stdout.trim())?.[1] ?? NaN);
    const decoded = await readFile(out).catch(() => Buffer.alloc(0));
    ctx.table('curl --compressed through the tap', ['Accept-Encoding curl sent (read on the wire)', 'Content-Encoding', 'bytes curl downloaded', 'bytes on the tap', 'decoded sha256'], [
      [offered, gotCoding, downloaded, conn.down, sha(decoded)],
    ]);
    ctx.claim(
      'curl --compressed offered codings itself, downloaded the compressed body, and decoded it to the same bytes',
      curl.code === 0 && gotCoding !== 'identity' && offered.includes(gotCoding) && downloaded < id.wireBody / 3 && sha(decoded) === sha(id.decoded),
      `curl offered "${offered}", got ${gotCoding}: ${downloaded} B downloaded for ${decoded.length} B decoded (sha256 ${sha(decoded)})`,
    );
  },
});
