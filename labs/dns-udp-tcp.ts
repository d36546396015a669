import { spawn, spawnSync } from 'node:child_process';
import dns from 'node:dns';
import net from 'node:net';
import { captureAvailable, startCapture, type Capture } from '../core/capture/index.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { closedPort } from '../core/ports.ts';
import { sleep } from '../core/time.ts';
import { queryTcp, queryUdp, type DnsAnswer } from './measure/dns.ts';

const DNSMASQ_PEER = 'dnsmasq (Debian package dnsmasq-base; npm run peers installs it)';
const HOST = '127.0.0.1';
const ZONE = 'wirelab.test';
/** dnsmasq's largest UDP answer to a client that offers EDNS0 (its default in 2.90, set here so the lab does not depend on it). */
const EDNS_MAX = 1232;
/** Classic DNS over UDP: 512 bytes at most without EDNS0 (RFC 1035 4.2.1). */
const CLASSIC_MAX = 512;

/** The TXT records dnsmasq serves: `count` strings of `size` letters each, each record distinct. */
function records(prefix: string, count: number, size: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}-`.padEnd(size, String.fromCharCode(97 + (i % 26))));
}

interface Dnsmasq {
  port: number;
  pid: number;
  /** Lines of its --log-queries output so far. */
  log: string[];
}

async function freePortBoth(): Promise<number> {
  for (let i = 0; i < 10; i++) {
    const port = await closedPort('udp', HOST);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, HOST, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  return closedPort('udp', HOST);
}

/** Debian's dnsmasq, no config file, no upstream, only the records given; stopped by its PID when the lab ends. */
async function startDnsmasq(ctx: LabContext, txt: Record<string, string[]>): Promise<Dnsmasq> {
  const port = await freePortBoth();
  const args = ['--keep-in-foreground', '--conf-file=/dev/null', '--pid-file', `--port=${port}`, `--listen-address=${HOST}`, '--bind-interfaces', '--no-resolv', '--no-hosts', '--log-queries', '--log-facility=-', `--edns-packet-max=${EDNS_MAX}`];
  for (const [name, strings] of Object.entries(txt)) for (const s of strings) args.push(`--txt-record=${name},${s}`);
  const child = spawn('dnsmasq', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const d: Dnsmasq = { port, pid: child.pid ?? 0, log: [] };
  let text = '';
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    const lines = text.split('\n');
    text = lines.pop()!;
    d.log.push(...lines);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.on('error', (err) => d.log.push(`spawn error: ${err.message}`));
  ctx.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(d.pid, 'SIGTERM');
      await Promise.race([exited, sleep(3000)]);
    }
  });
  for (let i = 0; i < 250 && !d.log.some((l) => /started, version/.test(l)); i++) {
    if (child.exitCode !== null) break;
    await sleep(20);
  }
  if (!d.log.some((l) => /started, version/.test(l))) ctx.skip(`dnsmasq did not start on ${HOST}:${port}: ${d.log.slice(-3).join(' / ')}`);
  return d;
}

function row(what: string, a: DnsAnswer, expected: number): Array<string | number> {
  return [what, a.bytes, a.truncated ? 'TC=1' : 'TC=0', `${a.txt.length}/${expected}`];
}

export default defineLab({
  id: 'dns-udp-tcp',
  title: 'DNS: UDP first, TCP when the answer does not fit',
  concept: 'DNS asks over UDP (one datagram each way, no connection); an answer too large for the datagram comes back cut with the TC bit set, and the resolver asks again over TCP, which carries any size. EDNS0 lets a client accept larger UDP answers.',
  protocols: ['dns', 'udp', 'tcp'],
  timeoutMs: 30_000,
  params: {
    records: { kind: 'count', default: 12, min: 7, max: 200, help: `TXT records in the big answer (each \`size\` bytes): over ${EDNS_MAX} B in all, so it never fits UDP` },
    size: { kind: 'size', default: 200, min: 180, max: 255, help: 'bytes in each TXT string (one character-string holds at most 255)' },
  },
  async run(ctx) {
    const { records: N, size: SIZE } = ctx.params;
    if (spawnSync('sh', ['-c', 'command -v dnsmasq'], { stdio: 'ignore' }).status !== 0) ctx.skip(`this lab needs ${DNSMASQ_PEER}`);
    const small = ['hello-from-dnsmasq'];
    const medium = records('m', 3, SIZE); // about 3 × (size + 12) B: over 512, under 1232
    const big = records('b', N, SIZE);
    const d = await startDnsmasq(ctx, { [`small.${ZONE}`]: small, [`medium.${ZONE}`]: medium, [`big.${ZONE}`]: big });
    const q = { host: HOST, port: d.port };

    const rows: Array<Array<string | number>> = [];
    const s = await queryUdp({ ...q, name: `small.${ZONE}` });
    rows.push(row('small, UDP', s, 1));
    const mClassic = await queryUdp({ ...q, name: `medium.${ZONE}` });
    rows.push(row('medium, UDP (no EDNS0: 512 B)', mClassic, medium.length));
    const mEdns = await queryUdp({ ...q, name: `medium.${ZONE}`, ednsUdpSize: 4096 });
    rows.push(row(`medium, UDP + EDNS0 (4096 offered)`, mEdns, medium.length));
    const bUdp = await queryUdp({ ...q, name: `big.${ZONE}`, ednsUdpSize: 4096 });
    rows.push(row('big, UDP + EDNS0 (4096 offered)', bUdp, N));
    const bTcp = await queryTcp({ ...q, name: `big.${ZONE}` });
    rows.push(row('big, TCP', bTcp, N));
    ctx.table(`answers from dnsmasq (PID ${d.pid}) on ${HOST}:${d.port}, asked by wirelab's own DNS client`, ['question', 'answer bytes', 'truncated', 'TXT records'], rows);

    ctx.claim('a small answer fits one UDP datagram: no connection, no TC bit, the whole answer', !s.truncated && s.txt.length === 1 && s.txt[0] === small[0], `${s.bytes} B, ${s.txt.length} record`);
    ctx.claim(
      `without EDNS0 an answer over ${CLASSIC_MAX} B comes back truncated over UDP: TC bit set, ${CLASSIC_MAX} B or less, records missing`,
      mClassic.truncated && mClassic.bytes <= CLASSIC_MAX && mClassic.txt.length < medium.length,
      `${mClassic.bytes} B, ${mClassic.txt.length}/${medium.length} records`,
    );
    ctx.claim(
      'with EDNS0 (an OPT record offering 4096 B) the same answer came whole over UDP',
      !mEdns.truncated && mEdns.txt.length === medium.length && medium.every((t) => mEdns.txt.includes(t)) && mEdns.bytes > CLASSIC_MAX,
      `${mEdns.bytes} B, ${mEdns.txt.length}/${medium.length} records`,
    );
    ctx.claim(
      `an answer larger than the server's UDP limit (${EDNS_MAX} B) is truncated even with EDNS0, and comes whole over TCP`,
      bUdp.truncated && bUdp.bytes <= EDNS_MAX && !bTcp.truncated && bTcp.txt.length === N && big.every((t) => bTcp.txt.includes(t)) && bTcp.bytes > EDNS_MAX,
      `UDP ${bUdp.bytes} B with ${bUdp.txt.length}/${N}; TCP ${bTcp.bytes} B with ${bTcp.txt.length}/${N}, each text as configured`,
    );

    // A real resolver library: Node's (c-ares). It asks over UDP, sees TC, and asks again over TCP by itself.
    const avail = captureAvailable();
    let capture: Capture | undefined;
    if (avail.ok) capture = await startCapture(`port ${d.port}`);
    else ctx.note(`not observed on this machine: the packets of node:dns's retry (a capture): ${avail.reason}; dnsmasq's query log counts it instead`);
    const logged = (): number => d.log.filter((l) => l.includes(`query[TXT] big.${ZONE}`)).length;
    const before = logged();
    const resolver = new dns.promises.Resolver({ timeout: 3000, tries: 2 });
    resolver.setServers([`${HOST}:${d.port}`]);
    const got = await resolver.resolveTxt(`big.${ZONE}`);
    for (let i = 0; i < 50 && logged() - before < 2; i++) await sleep(20);
    const queries = logged() - before;
    const texts = got.map((chunks) => chunks.join(''));
    ctx.claim(
      `node:dns resolveTxt() returned all ${N} records, each as configured, though the UDP answer could not hold them`,
      texts.length === N && big.every((t) => texts.includes(t)),
      `${texts.length} records`,
    );
    ctx.claim('dnsmasq logged the question twice: once over UDP (answered truncated), once more over TCP', queries === 2, `${queries} queries for big.${ZONE} in its log`);
    if (capture) {
      const packets = await capture.stop();
      const udpAnswers = packets.filter((p) => p.proto === 'udp' && p.sport === d.port);
      const syn = packets.find((p) => p.proto === 'tcp' && p.dport === d.port && p.flags.includes('SYN') && !p.flags.includes('ACK'));
      const tcpData = packets.filter((p) => p.proto === 'tcp' && p.sport === d.port && p.payload > 0).reduce((a, p) => a + p.payload, 0);
      ctx.claim(
        'the capture: a UDP answer first, then a TCP connection (SYN) to the same port carrying the whole answer',
        udpAnswers.length >= 1 && syn !== undefined && syn.t >= udpAnswers[0]!.t && tcpData > EDNS_MAX,
        `${udpAnswers.length} UDP answer(s) of ${udpAnswers.map((p) => p.payload).join(', ')} B, then SYN at +${syn ? (syn.t - udpAnswers[0]!.t).toFixed(1) : '?'} ms, ${tcpData} B back over TCP`,
      );
    }
  },
});
