import http from 'node:http';
import { json, problem, type Ctx, type ServerState } from '../context.ts';
import { HttpError } from '../limits.ts';
import type { Router } from '../router.ts';

/**
 * The gateway's upstream: a deliberately slow node:http server of our own on 127.0.0.1 that answers after
 * ?delay=ms. Started on first use, closed with the server.
 */
function upstream(state: ServerState): Promise<{ port: number; close(): Promise<void> }> {
  state.upstream ??= new Promise((resolve, reject) => {
    const server = http.createServer((req, res) => {
      const delay = Number(new URL(req.url ?? '/', 'http://upstream').searchParams.get('delay') ?? 0);
      const timer = setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ upstream: 'slow-upstream', delayedMs: delay }));
      }, Math.min(Math.max(delay, 0), 60_000));
      res.once('close', () => clearTimeout(timer));
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : 0,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
  return state.upstream;
}

/**
 * /gateway?delay=ms forwards to the slow upstream and waits gatewayTimeoutMs for it: a slower upstream gives a real 504
 * Gateway Timeout; an unreachable one a 502 Bad Gateway.
 */
export function registerGateway(router: Router): void {
  router.add('GET', '/gateway', async (ctx: Ctx) => {
    const delay = Number(ctx.url.searchParams.get('delay') ?? 0);
    if (!(delay >= 0)) throw new HttpError(400, 'delay must be >= 0 ms');
    const { port } = await upstream(ctx.state);
    const timeout = ctx.state.options.gatewayTimeoutMs;
    const started = performance.now();
    const result = await new Promise<{ status: number; body: string } | 'timeout' | Error>((resolve) => {
      const up = http.get({ host: '127.0.0.1', port, path: `/?delay=${delay}`, agent: false }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 502, body }));
        r.on('error', resolve);
      });
      up.setTimeout(timeout, () => {
        up.destroy();
        resolve('timeout');
      });
      up.on('error', (e) => resolve(e));
      ctx.res.once('close', () => up.destroy());
    });
    const ms = Math.round(performance.now() - started);
    if (result === 'timeout') {
      return problem(ctx, 504, `upstream did not answer within gatewayTimeoutMs=${timeout} (asked to take ${delay} ms)`);
    }
    if (result instanceof Error) return problem(ctx, 502, `upstream failed: ${result.message}`);
    json(ctx, 200, { gateway: 'ok', upstreamStatus: result.status, ms, upstream: JSON.parse(result.body) });
  });
}
