import type { Tracer } from './trace/index.ts';
import type { RunningServer } from './server.ts';

/**
 * One server that `wirelab up` starts. Its port is `portBase + wellKnownPort` (tcp echo: 7000 + 7 = 7007,
 * SMTP: 7000 + 25...), so `--port-base` moves them all and the numbers stay easy to remember.
 */
export interface ServiceEntry {
  /** Unique, e.g. `tcp-echo`. */
  name: string;
  /** Transport or protocol shown in the table and in `--json` (`tcp`, `udp`, `http`...). */
  proto: string;
  /** The IANA port of the real service; wirelab listens on portBase + this. */
  wellKnownPort: number;
  /** A few words: what the server does. */
  describe: string;
  start(options: { host: string; port: number; tracer: Tracer }): Promise<RunningServer>;
  /** A command for a program nobody here wrote (nc, socat, curl, python3 -c ...), ready to paste. */
  tryWith(server: RunningServer): string;
  /** The address shown in the table and given as `url` in `--json` (default: the server's own `url`). */
  url?(server: RunningServer): string;
  /**
   * Extra fields for `wirelab up --json` (an FTP root, say); string ones are also printed under the table. `others`
   * are the servers started alongside, by name (the WebRTC page URL needs the HTTP server's).
   */
  extra?(server: RunningServer, others?: ReadonlyMap<string, RunningServer>): Record<string, unknown>;
}

/**
 * One row of `wirelab up`'s table: what `--json` prints, what the dashboard's servers view shows, what tests read.
 * The service's `extra` fields (an FTP root, the HTTP server's dashboard URL...) come along.
 */
export interface UpRow {
  name: string;
  proto: string;
  host: string;
  port: number;
  url?: string;
  try: string;
  /** The service's few words (the dashboard shows them). */
  describe?: string | undefined;
  /** `--impair`: the toxics or impairments in front of it. */
  impairment?: unknown;
  [extra: string]: unknown;
}

export const DEFAULT_PORT_BASE = 7000;

/** The highest port base that keeps every service's port under 65536. */
export function maxPortBase(services: ServiceEntry[]): number {
  return 65535 - Math.max(0, ...services.map((s) => s.wellKnownPort));
}
