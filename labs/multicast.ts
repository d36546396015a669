import dgram from 'node:dgram';
import net from 'node:net';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { sleep } from '../core/time.ts';

/** A socket on the lab's port, counting what it receives. */
interface Receiver {
  name: string;
  socket: dgram.Socket;
  got: number;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}

async function bindReceiver(ctx: LabContext, name: string, address: string, port: number): Promise<Receiver> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const r: Receiver = { name, socket, got: 0 };
  socket.on('message', () => r.got++);
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(port, address, () => resolve()));
  // After the bind: anything later (a late ICMP, a closed socket) is noted, never thrown.
  socket.removeAllListeners('error');
  socket.on('error', (err) => ctx.note(`${name}: ${errnoOf(err)}`));
  ctx.defer(() => new Promise<void>((res) => socket.close(() => res())));
  return r;
}

/** Sends `n` datagrams to group:port, then waits until the counts stop moving (every send is awaited). */
async function sendAll(tx: dgram.Socket, n: number, group: string, port: number, receivers: Receiver[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => tx.send(`datagram ${i}`, port, group, (err) => (err ? reject(err) : resolve())));
  }
  let last = -1;
  for (let i = 0; i < 40; i++) {
    await sleep(50);
    const total = receivers.reduce((a, r) => a + r.got, 0);
    if (total === last) break;
    last = total;
  }
}

export default defineLab({
  id: 'multicast',
  title: 'UDP multicast on loopback: one send, every member gets a copy',
  concept: 'A host joins a 239.x group on an interface (IGMP membership); one datagram sent to the group reaches every socket that joined, and a group nobody joined reaches nobody. TCP has no such thing: it is one-to-one.',
  protocols: ['udp'],
  timeoutMs: 30_000,
  params: {
    count: { kind: 'count', default: 20, min: 1, max: 5_000, help: 'datagrams sent to each group in each step' },
  },
  async run(ctx) {
    const N = ctx.params.count;
    // A group per process (239/8 is administratively scoped: never routed off the site), so two runs at once do not meet.
    const group = `239.77.${(process.pid >> 8) & 0xff}.${process.pid & 0xff}`;
    const other = `239.78.${(process.pid >> 8) & 0xff}.${process.pid & 0xff}`;
    // Members bind the wildcard and the group address; both join the group on lo (the interface with 127.0.0.1).
    const a = await bindReceiver(ctx, 'member A (0.0.0.0, joined)', '0.0.0.0', 0);
    const port = a.socket.address().port;
    const b = await bindReceiver(ctx, 'member B (group address, joined)', group, port);
    const wildcard = await bindReceiver(ctx, 'never joined (0.0.0.0)', '0.0.0.0', port);
    const unicast = await bindReceiver(ctx, 'never joined (127.0.0.1)', '127.0.0.1', port);
    const all = [a, b, wildcard, unicast];
    let joinError: unknown;
    try {
      a.socket.addMembership(group, '127.0.0.1');
      b.socket.addMembership(group, '127.0.0.1');
    } catch (err) {
      joinError = err;
    }
    if (joinError) ctx.skip(`this host does not let a socket join ${group} on lo (${errnoOf(joinError)})`);

    const tx = dgram.createSocket('udp4');
    tx.on('error', (err) => ctx.note(`sender: ${errnoOf(err)}`));
    await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
    ctx.defer(() => new Promise<void>((res) => tx.close(() => res())));
    tx.setMulticastInterface('127.0.0.1');
    tx.setMulticastLoopback(true); // IP_MULTICAST_LOOP: the sending host's own members get a copy
    tx.setMulticastTTL(0); // and nothing leaves the host

    const counts = (): number[] => all.map((r) => r.got);
    const rows: Array<Array<string | number>> = [];
    const step = async (label: string, to: string): Promise<number[]> => {
      const before = counts();
      await sendAll(tx, N, to, port, all);
      const d = counts().map((c, i) => c - before[i]!);
      rows.push([label, `${N} → ${to}`, ...d]);
      return d;
    };

    const joined = await step(`A and B joined ${group}`, group);
    const notJoined = await step(`nobody joined ${other}`, other);
    a.socket.dropMembership(group, '127.0.0.1');
    b.socket.dropMembership(group, '127.0.0.1');
    const left = await step(`A and B left ${group}`, group);
    ctx.table(`datagrams received per socket, all on UDP port ${port}`, ['step', 'sent', ...all.map((r) => r.name)], rows);

    ctx.claim(
      `two members that joined ${group} on lo each got every one of the ${N} datagrams, once: ${N} sends, ${2 * N} copies`,
      joined[0] === N && joined[1] === N,
      `A got ${joined[0]}, B got ${joined[1]}`,
    );
    ctx.claim(
      `a group nobody joined (${other}) reached no socket on the same port, the wildcard ones included: the host filters groups it has not joined`,
      notJoined.every((n) => n === 0),
      `received ${notJoined.join(', ')}`,
    );
    ctx.claim(
      `after both members left ${group}, its datagrams reached no socket: membership, not the port, decides delivery`,
      left.every((n) => n === 0),
      `received ${left.join(', ')}`,
    );
    ctx.claim(
      'a socket bound to 127.0.0.1 on the same port that never joined got none: a multicast datagram is addressed to the group, not to it',
      joined[3] === 0,
      `got ${joined[3]}`,
    );
    // Linux keeps the membership per interface; a socket bound to the wildcard address that never joined still gets the
    // group's datagrams while another socket holds the membership (IP_MULTICAST_ALL, on by default; Node cannot clear it).
    ctx.claim(
      `Linux: a wildcard socket on the port that never joined still got all ${N} while A and B held the membership (IP_MULTICAST_ALL = 1, the default): joining is per interface, per-socket filtering is opt-in`,
      joined[2] === N,
      `got ${joined[2]}`,
    );

    // TCP has no group address: a connection is between two endpoints.
    const tcpErr = await new Promise<unknown>((resolve) => {
      const s = net.connect(port, group);
      s.once('connect', () => {
        s.destroy();
        resolve(null);
      });
      s.once('error', resolve);
    });
    ctx.claim(`TCP: connecting to the group address ${group} fails: TCP is one-to-one`, tcpErr !== null, errnoOf(tcpErr));
  },
});
