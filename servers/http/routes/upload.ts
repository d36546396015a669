import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ErrorCodes } from '../../../core/errors.ts';
import { headerValue, json, type Ctx } from '../context.ts';
import { HttpError } from '../limits.ts';
import type { Router } from '../router.ts';

/**
 * /upload streams the body through a hash without keeping it, stopping at maxBodyBytes with 413. With
 * `Expect: 100-continue` the server has already said 100 Continue (or refused a declared size with 413) before the
 * body was sent: see the checkContinue handler in index.ts.
 */
export function registerUpload(router: Router): void {
  router.add(['POST', 'PUT'], '/upload', async (ctx: Ctx) => {
    const max = ctx.state.options.maxBodyBytes;
    // ?hash=0 only counts (bulk-transfer measurements, where hashing would be what is measured).
    const hash = ctx.url.searchParams.get('hash') === '0' ? null : createHash('sha256');
    const started = performance.now();
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      const req = ctx.req as IncomingMessage;
      req.on('data', (chunk: Buffer) => {
        n += chunk.length;
        if (n > max) {
          req.removeAllListeners('data');
          req.pause();
          const err = new HttpError(413, `body of more than ${max} B exceeds maxBodyBytes=${max}`, { code: ErrorCodes.HTTP_BODY_TOO_LARGE, closeConnection: true });
          reject(err);
          return;
        }
        hash?.update(chunk);
      });
      req.on('end', resolve);
      req.on('error', reject);
    });
    json(ctx, 200, {
      bytes: n,
      sha256: hash ? hash.digest('hex') : null,
      expect: headerValue(ctx.req, 'expect') ?? null,
      ms: Math.round(performance.now() - started),
    });
  });
}
