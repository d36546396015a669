import { defineLab } from 'wirelab';
import { startTcpServer } from 'wirelab/servers/tcp';
import { connectTcp, type TcpClient } from 'wirelab/clients/tcp';

const TRIES = 11;
// Linux holds a delayed ACK at least 40 ms (TCP_DELACK_MIN); a busy machine only makes a wait longer, never shorter.
const STALL_MS = 30;

export default defineLab({
  id: 'nagle-delayed-ack',
  title: 'Write, write, read: the 40 ms stall',
  concept: "Nagle's algorithm holds a small write while earlier data is unacknowledged; the peer delays its ACK; TCP_NODELAY breaks the deadlock.",
  protocols: ['tcp'],
  async run(ctx) {
    const server = await ctx.start(startTcpServer({ framing: 'line', tracer: ctx.tracer }));
    const nagle = await connectTcp({ port: server.port, noDelay: false, tracer: ctx.tracer });
    const noDelay = await connectTcp({ port: server.port, noDelay: true, tracer: ctx.tracer });
    ctx.defer(() => nagle.end());
    ctx.defer(() => noDelay.end());
    // A request sent as two small writes (think: headers, then body), then wait for the answer.
    const request = async (client: TcpClient): Promise<number> => {
      const t0 = performance.now();
      void client.send('head:');
      void client.send('body\n');
      await client.readBytes('head:body\n'.length);
      return performance.now() - t0;
    };
    const times = { nagle: [] as number[], noDelay: [] as number[] };
    for (let i = 0; i < TRIES; i++) {
      // Taking turns: whatever else the machine is doing slows both sockets alike.
      times.nagle.push(await request(nagle));
      times.noDelay.push(await request(noDelay));
    }
    const stalled = (ms: number[]): number => ms.filter((t) => t >= STALL_MS).length;
    const median = (ms: number[]): string => `${[...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!.toFixed(2)} ms`;
    ctx.table(`a request written in two pieces, ${TRIES} tries each`, ['socket', 'first try', 'median', `tries ≥ ${STALL_MS} ms`], [
      ['Nagle on (the default)', `${times.nagle[0]!.toFixed(2)} ms`, median(times.nagle), String(stalled(times.nagle))],
      ['TCP_NODELAY', `${times.noDelay[0]!.toFixed(2)} ms`, median(times.noDelay), String(stalled(times.noDelay))],
    ]);
    ctx.claim(`with Nagle on, most requests waited for a delayed ACK (≥ ${STALL_MS} ms)`, stalled(times.nagle) > TRIES / 2, `${stalled(times.nagle)} of ${TRIES}`);
    ctx.claim('with TCP_NODELAY, most did not', stalled(times.noDelay) < TRIES / 2, `${stalled(times.noDelay)} of ${TRIES}`);
  },
});
