import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabContext } from '../core/lab/index.ts';
import { createTracer, forwardTo, MemorySink, type Tracer } from '../core/trace/index.ts';
import { startFtpServer, type FtpServerOptions, type RunningFtpServer } from '../servers/ftp/index.ts';

/** Shared by the FTP labs (files starting with `_` are not labs themselves). */
export interface LabFtp {
  server: RunningFtpServer;
  /** Every event the server and our clients made, to check what happened on the wire. */
  sink: MemorySink;
  /** Records into `sink` and forwards to the lab's own tracer (`--trace`). */
  tracer: Tracer;
}

/** A tracer that keeps events in `sink` and hands each one on to `outer` too. */
export function teeTracer(outer: Tracer, sink: MemorySink): Tracer {
  return createTracer(outer.enabled ? [sink, forwardTo(outer)] : [sink], { libs: outer.libs ?? false });
}

/** An FTP server on a free port with a throw-away root (the demo user, its readme), closed when the lab ends. */
export async function startLabFtp(ctx: LabContext, options: FtpServerOptions = {}): Promise<LabFtp> {
  const rootDir = await mkdtemp(join(tmpdir(), 'wirelab-ftp-lab-'));
  ctx.defer(() => rm(rootDir, { recursive: true, force: true }));
  const sink = new MemorySink();
  const tracer = teeTracer(ctx.tracer, sink);
  const server = await ctx.start(startFtpServer({ rootDir, tracer, ...options }));
  return { server, sink, tracer };
}

/** The port in `… (|||port|)` (229) or `… (h1,h2,h3,h4,p1,p2)` (227). */
export function announcedPort(reply: string): number | undefined {
  const e = /\(\|\|\|(\d+)\|\)/.exec(reply);
  if (e) return Number(e[1]);
  const p = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(reply);
  return p ? Number(p[5]) * 256 + Number(p[6]) : undefined;
}

export const portOf = (hostPort: string | undefined): number => Number((hostPort ?? '').split(':').pop());
