import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import type { KernelLink, Side } from '../../core/impair/kernel/index.ts';

/**
 * An agent inside a network namespace that sends UDP datagrams through a raw socket, with a UDP checksum that is right,
 * wrong or absent (0: "no checksum", allowed over IPv4), and receives on an ordinary UDP socket. Node has no raw
 * sockets, so the agent is Python's standard library (Debian package python3), run by `ip netns exec`. One JSON line per
 * answer on stdout:
 *   started             {"port": N}          the UDP port its receiving socket has on 0.0.0.0
 *   a datagram arrives  {"recv": "text", "from": "a.b.c.d"}
 *   {"op": "send", "src", "dst", "dport", "checksum": "good" | "bad" | "none", "payload"}  ->  {"sent": bytes, "checksum": value}
 *   {"op": "snmp"}      ->  {"udp": {"InDatagrams": ..., "InErrors": ..., "InCsumErrors": ...}}  (this namespace's /proc/net/snmp)
 */
const AGENT = String.raw`
import json, socket, struct, sys, threading
lock = threading.Lock()
def out(v):
    with lock:
        sys.stdout.write(json.dumps(v) + "\n"); sys.stdout.flush()
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("0.0.0.0", 0))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
def listen():
    while True:
        data, addr = rx.recvfrom(65535)
        out({"recv": data.decode("latin1"), "from": addr[0]})
threading.Thread(target=listen, daemon=True).start()
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF
def snmp():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))
out({"port": rx.getsockname()[1]})
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "snmp":
        out({"udp": snmp()})
    elif cmd["op"] == "send":
        payload = cmd["payload"].encode("latin1")
        length = 8 + len(payload)
        pseudo = socket.inet_aton(cmd["src"]) + socket.inet_aton(cmd["dst"]) + struct.pack("!BBH", 0, 17, length)
        c = csum(pseudo + struct.pack("!HHHH", 40000, cmd["dport"], length, 0) + payload) or 0xFFFF
        if cmd["checksum"] == "bad":
            c ^= 0x0101
            if c == 0: c = 0x0202
        elif cmd["checksum"] == "none":
            c = 0
        raw.sendto(struct.pack("!HHHH", 40000, cmd["dport"], length, c) + payload, (cmd["dst"], 0))
        out({"sent": length, "checksum": c})
`;

/** Debian's interpreter when it is there: a version manager's shim on the PATH (pyenv) can take seconds to start. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export type UdpCounters = Record<string, number>;

/** Whether the agent can run: python3 on the PATH (the namespaces and root are KernelLink's to check). */
export function rawUdpAvailable(): { ok: boolean; reason?: string } {
  const r = spawnSync(PYTHON, ['-c', 'import socket'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0 ? { ok: true } : { ok: false, reason: 'python3 is not installed (Debian package python3; npm run peers)' };
}

/** One agent in one namespace of a kernel link; killed when the link closes. */
export class RawUdpAgent {
  readonly received: Array<{ text: string; from: string }> = [];
  readonly #answers: string[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #stderr = '';

  private constructor(
    private readonly child: ReturnType<KernelLink['spawn']>,
    readonly port: number,
  ) {}

  static async start(link: KernelLink, side: Side): Promise<RawUdpAgent> {
    // The child's 'error' (and its stdin's) is handled where it is made, inside KernelLink.spawn.
    const child = link.spawn(side, PYTHON, ['-u', '-c', AGENT]);
    const lines = createInterface({ input: child.stdout! });
    const first = new Promise<number>((resolve, reject) => {
      lines.once('line', (l) => {
        try {
          resolve((JSON.parse(l) as { port: number }).port);
        } catch (err) {
          reject(err);
        }
      });
      child.once('exit', () => reject(new WirelabError(ErrorCodes.CLOSED, `raw UDP agent in ${link.ns(side)} ended before it started: ${stderr.trim()}`)));
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const port = await first;
    const a = new RawUdpAgent(child, port);
    a.#stderr = stderr;
    child.stderr!.on('data', (d) => (a.#stderr += d));
    child.once('exit', () => {
      a.#ended = true;
      a.#wake?.();
    });
    lines.on('line', (l) => {
      const v = JSON.parse(l) as { recv?: string; from?: string };
      if (v.recv !== undefined) a.received.push({ text: v.recv, from: v.from ?? '' });
      else a.#answers.push(l);
      a.#wake?.();
    });
    return a;
  }

  async #ask(cmd: object): Promise<Record<string, unknown>> {
    this.child.stdin!.write(JSON.stringify(cmd) + '\n');
    const deadline = performance.now() + 10_000;
    while (this.#answers.length === 0) {
      if (this.#ended || performance.now() > deadline) throw new WirelabError(ErrorCodes.CLOSED, `raw UDP agent: no answer to ${JSON.stringify(cmd)}: ${this.#stderr.trim()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    return JSON.parse(this.#answers.shift()!) as Record<string, unknown>;
  }

  /** Sends one datagram from a raw socket; the checksum field is computed right, then spoilt or zeroed on request. */
  async send(o: { src: string; dst: string; dport: number; checksum: 'good' | 'bad' | 'none'; payload: string }): Promise<{ sent: number; checksum: number }> {
    return (await this.#ask({ op: 'send', ...o })) as { sent: number; checksum: number };
  }

  /** The namespace's UDP counters (Udp: InDatagrams, InErrors, InCsumErrors, ...). */
  async counters(): Promise<UdpCounters> {
    return ((await this.#ask({ op: 'snmp' })) as { udp: UdpCounters }).udp;
  }

  /** Waits until a datagram with this text arrived, or `ms` passed; whether it did. */
  async waitFor(text: string, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!this.received.some((r) => r.text === text) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.received.some((r) => r.text === text);
  }

  async stop(): Promise<void> {
    if (this.#ended) return;
    const exited = once(this.child, 'exit');
    this.child.stdin!.end();
    this.child.kill('SIGTERM');
    await exited;
  }
}
