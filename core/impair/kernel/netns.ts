import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { ErrorCodes, WirelabError } from '../../errors.ts';
import { NOOP_TRACER, type Tracer } from '../../trace/index.ts';

/**
 * Kernel mode: two network namespaces joined by a veth pair, so traffic between them crosses a real (virtual) link
 * where nftables drops packets at random (`numgen random`) and tbf limits the rate. Real TCP then really retransmits,
 * and the kernel's own counters (/proc/net/snmp, per namespace) say how often. Linux, root, `ip` and `nft` only.
 *
 * Loss is applied on the receiving side's input hook: a packet dropped on the sender's output hook is reported back to
 * the sender's TCP at once, which then resends it without counting a retransmission, hiding the very thing to show.
 */
export interface KernelSupport {
  available: boolean;
  /** Why not, naming what is missing. */
  reason?: string;
  /** netem (delay, reordering in the kernel); absent on some kernels, this machine kind included. */
  netem?: boolean;
}

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

let cached: KernelSupport | undefined;

/**
 * Whether kernel mode can run here: root, `ip`, `nft`, and a namespace can actually be made. Checked once.
 * WIRELAB_KERNEL=off turns it off (to see the userland fallback, or where namespaces are unwelcome).
 */
export function kernelSupport(): KernelSupport {
  if (cached) return cached;
  if (process.env.WIRELAB_KERNEL === 'off') return (cached = { available: false, reason: 'WIRELAB_KERNEL=off' });
  if (process.platform !== 'linux') return (cached = { available: false, reason: `kernel mode needs Linux, this is ${process.platform}` });
  if (process.getuid?.() !== 0) return (cached = { available: false, reason: 'kernel mode needs root (network namespaces, nftables)' });
  for (const [cmd, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['tc', 'iproute2']] as const) {
    if (!has(cmd)) return (cached = { available: false, reason: `kernel mode needs ${cmd} (Debian package ${pkg})` });
  }
  const probe = `wirelab-probe-${process.pid}`;
  const made = run('ip', ['netns', 'add', probe]);
  if (!made.ok) return (cached = { available: false, reason: `cannot create a network namespace: ${made.out.trim()}` });
  try {
    const nft = run('ip', ['netns', 'exec', probe, 'nft', '-f', '-'], 'table inet wlprobe {\n chain c {\n  type filter hook input priority 0;\n  numgen random mod 100 < 1 counter drop\n }\n}\n');
    if (!nft.ok) return (cached = { available: false, reason: `nftables does not work here: ${nft.out.trim()}` });
    run('ip', ['-n', probe, 'link', 'add', 'wlprobe0', 'type', 'dummy']);
    const netem = run('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'wlprobe0', 'root', 'netem', 'delay', '1ms']).ok;
    return (cached = { available: true, netem });
  } finally {
    run('ip', ['netns', 'del', probe]);
  }
}

const live = new Set<KernelLink>();
let hooked = false;
let counter = 0;

/** Deletes everything still made at exit, Ctrl-C included (synchronously: no event loop is left then). */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const l of live) l.closeSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    // First in line, so the other handlers (the lab runner's once-listener) are still registered and countable here.
    process.prependListener(sig, function onSignal() {
      for (const l of live) l.closeSync();
      // If nobody else handles the signal, keep its usual meaning: stop the process.
      if (process.listenerCount(sig) === 1) {
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      }
    });
  }
}

/** Namespaces left by a run that was killed (SIGKILL leaves no chance to clean up): their pid no longer exists. */
function sweepStale(): void {
  const list = run('ip', ['netns', 'list']).out;
  for (const m of list.matchAll(/^wirelab-(\d+)-\S+/gm)) {
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, someone else's
    }
    if (!alive) run('ip', ['netns', 'del', m[0]]);
  }
}

export type Side = 'a' | 'b';

/** /proc/net/snmp and /proc/net/netstat: a header line and a value line per prefix. */
function snmpTable(text: string, prefix: string): Record<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith(prefix));
  if (lines.length < 2) return {};
  const keys = lines[0]!.split(/\s+/).slice(1);
  const vals = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(keys.map((k, i) => [k, vals[i]!]));
}

export interface KernelLinkOptions {
  tracer?: Tracer;
}

/** Two namespaces `a` (10.77.0.1) and `b` (10.77.0.2) joined by a veth pair. Names are unique per process and link. */
export class KernelLink {
  readonly nsA: string;
  readonly nsB: string;
  readonly addrA = '10.77.0.1';
  readonly addrB = '10.77.0.2';
  readonly #vethA: string;
  readonly #vethB: string;
  readonly #children = new Set<ChildProcess>();
  readonly #tracer: Tracer;
  #closed = false;

  private constructor(o: KernelLinkOptions) {
    const n = ++counter;
    const tag = `${process.pid.toString(36)}${n.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    this.nsA = `wirelab-${process.pid}-${n}-a`;
    this.nsB = `wirelab-${process.pid}-${n}-b`;
    // Interface names have at most 15 characters.
    this.#vethA = `wl${tag}a`.slice(0, 15);
    this.#vethB = `wl${tag}b`.slice(0, 15);
    this.#tracer = o.tracer ?? NOOP_TRACER;
  }

  /** Creates both namespaces and the link. Throws WL_ERR_KERNEL_UNAVAILABLE, saying why, where kernel mode cannot run. */
  static create(options: KernelLinkOptions = {}): KernelLink {
    const support = kernelSupport();
    if (!support.available) throw new WirelabError(ErrorCodes.KERNEL_UNAVAILABLE, support.reason ?? 'kernel mode is not available');
    sweepStale();
    hookExit();
    const link = new KernelLink(options);
    live.add(link);
    try {
      link.#setup();
    } catch (err) {
      link.closeSync();
      throw err;
    }
    return link;
  }

  #must(args: string[], input?: string): void {
    const r = run('ip', args, input);
    if (!r.ok) throw new WirelabError(ErrorCodes.KERNEL_UNAVAILABLE, `ip ${args.join(' ')}: ${r.out.trim()}`);
  }

  #setup(): void {
    const { nsA, nsB } = this;
    this.#must(['netns', 'add', nsA]);
    this.#must(['netns', 'add', nsB]);
    this.#must(['link', 'add', this.#vethA, 'netns', nsA, 'type', 'veth', 'peer', 'name', this.#vethB, 'netns', nsB]);
    this.#must(['-n', nsA, 'addr', 'add', `${this.addrA}/30`, 'dev', this.#vethA]);
    this.#must(['-n', nsB, 'addr', 'add', `${this.addrB}/30`, 'dev', this.#vethB]);
    for (const [ns, dev] of [[nsA, this.#vethA], [nsB, this.#vethB]] as const) {
      this.#must(['-n', ns, 'link', 'set', dev, 'up']);
      this.#must(['-n', ns, 'link', 'set', 'lo', 'up']);
      this.#must(['netns', 'exec', ns, 'nft', '-f', '-'], 'table inet wirelab {\n chain input {\n  type filter hook input priority 0;\n }\n}\n');
    }
    this.#tracer.emit('impair', 'kernel', '*', 'netns', () => `created ${nsA} (${this.addrA}) ⇄ veth ⇄ ${nsB} (${this.addrB})`);
  }

  ns(side: Side): string {
    return side === 'a' ? this.nsA : this.nsB;
  }

  /**
   * Drops each packet travelling towards `to` with probability p (nftables `numgen random` on `to`'s input hook).
   * Loss toward b is client → server when the client runs in a.
   */
  setLoss(to: Side, p: number): void {
    const per10k = Math.round(Math.min(1, Math.max(0, p)) * 10_000);
    const rule = per10k === 0 ? '' : `add rule inet wirelab input iifname "${to === 'a' ? this.#vethA : this.#vethB}" numgen random mod 10000 < ${per10k} counter drop\n`;
    this.#must(['netns', 'exec', this.ns(to), 'nft', '-f', '-'], `flush chain inet wirelab input\n${rule}`);
    this.#tracer.emit('impair', 'kernel', '*', 'loss', () => `toward ${this.ns(to)}: drop ${per10k / 100}% (nft numgen random)`);
  }

  /**
   * Sends each packet travelling towards `to` twice with probability p (nftables `dup` on the sender's postrouting
   * hook): real duplicate segments, which the receiving TCP discards and reports with a D-SACK.
   */
  setDuplicate(to: Side, p: number): void {
    const from: Side = to === 'a' ? 'b' : 'a';
    const dev = from === 'a' ? this.#vethA : this.#vethB;
    const per10k = Math.round(Math.min(1, Math.max(0, p)) * 10_000);
    const table = 'table ip wirelab_dup {\n chain post {\n  type filter hook postrouting priority 0;\n }\n}\nflush chain ip wirelab_dup post\n';
    const rule = per10k === 0 ? '' : `add rule ip wirelab_dup post oifname "${dev}" numgen random mod 10000 < ${per10k} counter dup to ${to === 'a' ? this.addrA : this.addrB} device "${dev}"\n`;
    this.#must(['netns', 'exec', this.ns(from), 'nft', '-f', '-'], table + rule);
    this.#tracer.emit('impair', 'kernel', '*', 'duplicate', () => `toward ${this.ns(to)}: duplicate ${per10k / 100}% (nft dup)`);
  }

  /** The kernel's extended TCP counters in a namespace (TCPDSACKOldSent, TCPOFOQueue...), from /proc/net/netstat. */
  tcpExtCounters(side: Side): Record<string, number> {
    return snmpTable(run('ip', ['netns', 'exec', this.ns(side), 'cat', '/proc/net/netstat']).out, 'TcpExt:');
  }

  /** Limits what `from` sends to `kbit` kbit/s with tbf; 0 removes the limit. */
  setRate(from: Side, kbit: number): void {
    const [ns, dev] = from === 'a' ? [this.nsA, this.#vethA] : [this.nsB, this.#vethB];
    if (kbit <= 0) {
      run('tc', ['-n', ns, 'qdisc', 'del', 'dev', dev, 'root']);
      return;
    }
    const r = run('tc', ['-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '32kbit', 'latency', '400ms']);
    if (!r.ok) throw new WirelabError(ErrorCodes.KERNEL_UNAVAILABLE, `tc tbf: ${r.out.trim()}`);
  }

  /** Packets the loss rule toward `side` dropped so far. */
  dropped(side: Side): number {
    const out = run('ip', ['netns', 'exec', this.ns(side), 'nft', 'list', 'chain', 'inet', 'wirelab', 'input']).out;
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
  }

  /** The kernel's TCP counters in a namespace (RetransSegs, OutSegs...), from its own /proc/net/snmp. */
  tcpCounters(side: Side): Record<string, number> {
    return snmpTable(run('ip', ['netns', 'exec', this.ns(side), 'cat', '/proc/net/snmp']).out, 'Tcp:');
  }

  /** Starts a program inside one namespace; it is killed when the link closes. */
  spawn(side: Side, command: string, args: string[], cwd?: string): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(side), command, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    // A program that cannot start, or a write to one that has ended (EPIPE), is seen by the caller as its exit.
    child.on('error', () => this.#children.delete(child));
    child.stdin?.on('error', () => {});
    return child;
  }

  /** Kills the programs started inside, then deletes both namespaces (which deletes the veth pair). */
  async close(): Promise<void> {
    const exits = [...this.#children].map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r()))));
    for (const c of this.#children) c.kill('SIGTERM');
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 2000))]);
    this.closeSync();
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    for (const c of this.#children) c.kill('SIGKILL');
    run('ip', ['netns', 'del', this.nsA]);
    run('ip', ['netns', 'del', this.nsB]);
    this.#tracer.emit('impair', 'kernel', '*', 'netns', () => `deleted ${this.nsA} and ${this.nsB}`);
  }

  get closed(): boolean {
    return this.#closed;
  }
}
