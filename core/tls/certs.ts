import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import { dataDir } from '../paths.ts';

/** A local CA and a certificate for localhost / 127.0.0.1 / ::1 signed by it, as PEM, with where each file lives. */
export interface TlsMaterial {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
  caCertPath: string;
  certPath: string;
  keyPath: string;
}

const FILES = { caCert: 'ca.pem', caKey: 'ca-key.pem', cert: 'localhost.pem', key: 'localhost-key.pem' } as const;
const VALID_DAYS = 825;

const cache = new Map<string, Promise<TlsMaterial>>();

/**
 * The CA and localhost certificate under `<dir>` (default `<data dir>/tls`), made on first use and read afterwards.
 * The four files are written to a temporary folder that is renamed into place, so a crash or a second process racing
 * this one never leaves a half-written or mismatched set.
 */
export function getTlsMaterial(options: { dir?: string } = {}): Promise<TlsMaterial> {
  const dir = options.dir ?? join(dataDir(), 'tls');
  let p = cache.get(dir);
  if (!p) {
    p = loadOrCreate(dir);
    cache.set(dir, p);
    p.catch(() => cache.delete(dir));
  }
  return p;
}

async function load(dir: string): Promise<TlsMaterial> {
  const [caCert, cert, key] = await Promise.all(
    [FILES.caCert, FILES.cert, FILES.key].map((f) => readFile(join(dir, f), 'utf8')),
  );
  return {
    dir,
    caCert: caCert!,
    cert: cert!,
    key: key!,
    caCertPath: join(dir, FILES.caCert),
    certPath: join(dir, FILES.cert),
    keyPath: join(dir, FILES.key),
  };
}

async function loadOrCreate(dir: string): Promise<TlsMaterial> {
  try {
    return await load(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const parent = join(dir, '..');
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(join(parent, '.tls-'));
  try {
    const pems = await generate();
    await Promise.all(Object.entries(FILES).map(([k, f]) => writeFile(join(tmp, f), pems[k as keyof typeof FILES], { mode: 0o600 })));
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another process made the set first: use theirs.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return load(dir);
}

async function generate(): Promise<Record<keyof typeof FILES, string>> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + VALID_DAYS * 86_400_000);
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'wirelab local CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { caCert: ca.cert, caKey: ca.private, cert: leaf.cert, key: leaf.private };
}
