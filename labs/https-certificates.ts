import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import selfsigned from 'selfsigned';
import { defineLab } from '../core/lab/index.ts';
import { getTlsMaterial } from '../core/tls/index.ts';
import { startHttpServer } from '../servers/http/index.ts';

interface Attempt {
  ok: boolean;
  /** Node's / OpenSSL's code for the refusal, or 'ok'. */
  code: string;
}

/** One TLS handshake with certificate checks on (nothing is turned off): what the client decided, and why. */
function attempt(port: number, options: ConnectionOptions): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, minVersion: 'TLSv1.2', ...options });
    socket.once('secureConnect', () => {
      socket.end();
      resolve({ ok: socket.authorized, code: socket.authorized ? 'ok' : String(socket.authorizationError) });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve({ ok: false, code: err.code ?? err.message });
    });
  });
}

/** A GET over HTTPS with the given trust: the status, or the error code that stopped it before any HTTP was sent. */
function httpsGet(url: string, ca: string, servername: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url, { ca, servername, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(String(res.statusCode)));
      res.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    req.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

export default defineLab({
  id: 'https-certificates',
  title: 'The certificate matters: which CA signed it and which names it carries',
  concept: 'HTTPS encrypts only towards a server the client can verify: a certificate from a CA the client does not trust, or for another name, is refused before any HTTP is sent.',
  protocols: ['https', 'tls'],
  timeoutMs: 30_000,
  async run(ctx) {
    // Two independent CAs made by core/tls, each with its own localhost certificate, in folders of their own.
    const dirA = await mkdtemp(join(tmpdir(), 'wirelab-ca-a-'));
    const dirB = await mkdtemp(join(tmpdir(), 'wirelab-ca-b-'));
    ctx.defer(() => Promise.all([rm(dirA, { recursive: true, force: true }), rm(dirB, { recursive: true, force: true })]));
    const [a, b] = await Promise.all([getTlsMaterial({ dir: dirA }), getTlsMaterial({ dir: dirB })]);
    const fp = (pem: string): string => new X509Certificate(pem).fingerprint256.slice(0, 11);
    ctx.note(`CA A ${fp(a.caCert)}…, CA B ${fp(b.caCert)}… (both "wirelab local CA": the name alone proves nothing)`);
    const leaf = new X509Certificate(a.cert);
    ctx.note(`the server presents a certificate signed by CA A for: ${leaf.subjectAltName}`);

    const server = await ctx.start(startHttpServer({ tracer: ctx.tracer, tls: { certDir: dirA }, http2: false }));
    const good = await attempt(server.port, { ca: a.caCert, servername: 'localhost' });
    const otherCa = await attempt(server.port, { ca: b.caCert, servername: 'localhost' });
    const systemOnly = await attempt(server.port, { servername: 'localhost' });
    const wrongName = await attempt(server.port, { ca: a.caCert, servername: 'www.wirelab.example' });

    // A server whose certificate signs itself (no CA at all), and a client trusting CA A.
    const self = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
    });
    // startHttpServer takes its certificate from core/tls; a bare TLS server presents the self-signed one.
    const bare = createServer({ key: self.private, cert: self.cert });
    bare.on('error', () => undefined);
    bare.on('tlsClientError', () => undefined);
    bare.on('secureConnection', (s) => {
      s.on('error', () => undefined);
      s.end();
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
    ctx.defer(() => new Promise<void>((r) => bare.close(() => r())));
    const bareAddr = bare.address();
    const selfSigned = await attempt(typeof bareAddr === 'object' && bareAddr ? bareAddr.port : 0, { ca: a.caCert, servername: 'localhost' });

    ctx.table(
      'the same handshake, changing only what the client trusts and the name it asks for',
      ['client trusts', 'name asked for', 'verdict'],
      [
        ['CA A', 'localhost', good.code],
        ['CA B (another CA)', 'localhost', otherCa.code],
        ["Node's bundled public CAs only", 'localhost', systemOnly.code],
        ['CA A', 'www.wirelab.example', wrongName.code],
        ['CA A', 'localhost (server signs its own cert)', selfSigned.code],
      ],
    );

    ctx.claim('the right CA and the right name: the handshake completes and the certificate is verified', good.ok, good.code);
    ctx.claim(
      'a client trusting another CA is refused (the leaf\'s issuer is not one it trusts)',
      !otherCa.ok && (otherCa.code === 'CERT_SIGNATURE_FAILURE' || otherCa.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
      `${otherCa.code}${otherCa.code === 'CERT_SIGNATURE_FAILURE' ? ': CA B has CA A\'s name, so it was found as the issuer, and its key did not verify the signature' : ''}`,
    );
    ctx.claim('a client trusting only the public CAs is refused: no issuer of the leaf among them', !systemOnly.ok && systemOnly.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', systemOnly.code);
    ctx.claim('the right CA but a name the certificate does not carry is refused', !wrongName.ok && wrongName.code === 'ERR_TLS_CERT_ALTNAME_INVALID', wrongName.code);
    ctx.claim('a self-signed certificate is refused by a client that did not pin it', !selfSigned.ok && selfSigned.code === 'DEPTH_ZERO_SELF_SIGNED_CERT', selfSigned.code);

    // Over HTTPS proper: no request reaches the server unless the certificate checks out.
    const before = server.stats.requests;
    const refused = await httpsGet(`${server.url}/hello`, b.caCert, 'localhost');
    const afterRefused = server.stats.requests;
    const served = await httpsGet(`${server.url}/hello`, a.caCert, 'localhost');
    ctx.claim(
      'over HTTPS the refused client sent no request at all; the verified one got its answer',
      refused !== '200' && afterRefused === before && served === '200' && server.stats.requests === before + 1,
      `CA B: ${refused}, requests the server counted ${before} → ${afterRefused}; CA A: ${served}, requests now ${server.stats.requests}`,
    );
  },
});
