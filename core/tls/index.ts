import { createWriteStream, type WriteStream } from 'node:fs';
import type { TLSSocket, SecureVersion } from 'node:tls';
import type { EventEmitter } from 'node:events';
import { checkOneOf } from '../options.ts';
import type { Tracer } from '../trace/index.ts';
import { getTlsMaterial, type TlsMaterial } from './certs.ts';
import { round } from '../stats.ts';

export { getTlsMaterial, type TlsMaterial } from './certs.ts';

export type TlsVersion = '1.2' | '1.3';
const VERSIONS: Record<TlsVersion, SecureVersion> = { '1.2': 'TLSv1.2', '1.3': 'TLSv1.3' };

/** TLS settings shared by every wirelab server and client that speaks TLS. */
export interface TlsSettings {
  /** Lowest version offered or accepted. Default '1.2'. */
  minVersion?: TlsVersion;
  /** Highest version offered or accepted. Default '1.3'. */
  maxVersion?: TlsVersion;
  /** ALPN protocols, most preferred first. Default none. */
  alpn?: string[];
  /** Appends NSS key log lines here so Wireshark can decrypt. Default $SSLKEYLOGFILE (unset: off). */
  keylogFile?: string;
  /** Certificate folder. Default `<data dir>/tls`. */
  certDir?: string;
}

function versions(s: TlsSettings): { minVersion: SecureVersion; maxVersion: SecureVersion } {
  const min = checkOneOf('tls.minVersion', s.minVersion ?? '1.2', ['1.2', '1.3']);
  const max = checkOneOf('tls.maxVersion', s.maxVersion ?? '1.3', ['1.2', '1.3']);
  return { minVersion: VERSIONS[min], maxVersion: VERSIONS[max] };
}

/** Options for tls.createServer (and https / http2 / smtp-server later) with the local certificate. */
export async function tlsServerOptions(s: TlsSettings = {}) {
  const m: TlsMaterial = await getTlsMaterial(s.certDir ? { dir: s.certDir } : {});
  return { key: m.key, cert: m.cert, ...versions(s), ...(s.alpn ? { ALPNProtocols: s.alpn } : {}) };
}

/** Options for tls.connect that trust the local CA (and nothing is turned off: the certificate is verified). */
export async function tlsClientOptions(s: TlsSettings = {}) {
  const m: TlsMaterial = await getTlsMaterial(s.certDir ? { dir: s.certDir } : {});
  return { ca: m.caCert, servername: 'localhost', ...versions(s), ...(s.alpn ? { ALPNProtocols: s.alpn } : {}) };
}

const keylogStreams = new Map<string, WriteStream>();

/**
 * Writes the key log lines a TLS server or socket emits to `file` (NSS key log format, one line each), for Wireshark's
 * "(Pre)-Master-Secret log filename". Does nothing when no file is given and SSLKEYLOGFILE is unset.
 */
export function attachKeylog(target: EventEmitter, file: string | undefined = process.env.SSLKEYLOGFILE): void {
  if (!file) return;
  let out = keylogStreams.get(file);
  if (!out) {
    out = createWriteStream(file, { flags: 'a', mode: 0o600 });
    keylogStreams.set(file, out);
  }
  const stream = out;
  target.on('keylog', (line: Buffer) => stream.write(line));
}

export interface HandshakeInfo {
  version: string | null;
  cipher: string;
  alpn: string | false | null;
  /** Subject CN of the peer's certificate (the server's, seen from a client), when there is one. */
  subject: string | null;
  resumed: boolean;
  /** From the start of the handshake, when this end saw it start (a server's tls.Server hides that). */
  ms: number | null;
}

export function handshakeInfo(socket: TLSSocket, startedAt: number | null): HandshakeInfo {
  const cert = socket.getPeerCertificate?.();
  const own = socket.getCertificate?.();
  const subjectOf = (c: unknown): string | null => {
    const s = (c as { subject?: { CN?: string } } | null)?.subject;
    return s?.CN ? `CN=${s.CN}` : null;
  };
  return {
    version: socket.getProtocol(),
    cipher: socket.getCipher()?.standardName ?? socket.getCipher()?.name ?? 'unknown',
    alpn: socket.alpnProtocol ?? null,
    subject: subjectOf(cert && Object.keys(cert).length > 0 ? cert : own),
    resumed: socket.isSessionReused(),
    ms: startedAt === null ? null : round(performance.now() - startedAt),
  };
}

/**
 * Traces the TLS handshake of `socket` when it completes: version, cipher, ALPN, certificate subject, resumed or not.
 * `side` says which end this is. Call it right after the socket is made.
 */
export function traceTlsHandshake(tracer: Tracer, cid: string, socket: TLSSocket, side: 'client' | 'server'): void {
  if (!tracer.enabled) return;
  // A tls.Server hands over its sockets once they are secure ('secureConnection'): report at once, without a time.
  // A socket wrapped for STARTTLS / AUTH TLS is still before its handshake: it has no cipher yet (getProtocol()
  // already names the highest version it would accept, so it cannot tell).
  const done = side === 'server' && socket.getCipher() !== undefined;
  const startedAt = done ? null : performance.now();
  const report = (): void => {
    const h = handshakeInfo(socket, startedAt);
    tracer.emit('tls', cid, '*', 'handshake', () => ({
      summary: `${side}: ${describeHandshake(h)}`,
      meta: { side, ...h },
    }));
  };
  if (done) report();
  else socket.once(side === 'client' ? 'secureConnect' : 'secure', report);
}

/** "TLSv1.3 TLS_AES_256_GCM_SHA384 alpn=none cert=CN=localhost full in 3.1 ms" */
export function describeHandshake(h: HandshakeInfo): string {
  const time = h.ms === null ? '' : ` in ${h.ms} ms`;
  return `${h.version} ${h.cipher} alpn=${h.alpn || 'none'} cert=${h.subject ?? 'none'} ${h.resumed ? 'resumed' : 'full'}${time}`;
}
