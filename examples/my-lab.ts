// A lab of your own, in one file: `npx wirelab lab ./examples/my-lab.ts`.
// It starts a real server, talks to it with a real client, prints what it saw and checks what it claims.
import { defineLab } from 'wirelab';
import { startTcpServer } from 'wirelab/servers/tcp';
import { connectTcp } from 'wirelab/clients/tcp';

export default defineLab({
  id: 'nagle-delayed-ack',
  title: 'Write, write, read: the 40 ms stall',
  concept: "Nagle's algorithm holds a small write while earlier data is unacknowledged; the peer delays its ACK; TCP_NODELAY breaks the deadlock.",
  protocols: ['tcp'],
  async run(ctx) {
    const server = await ctx.start(startTcpServer({ framing: 'line', tracer: ctx.tracer }));
    const medianMs = async (noDelay: boolean): Promise<number> => {
      const client = await connectTcp({ port: server.port, noDelay, tracer: ctx.tracer });
      const times: number[] = [];
      for (let i = 0; i < 9; i++) {
        const t0 = performance.now();
        // A request sent as two small writes (think: headers, then body), then wait for the answer.
        void client.send('head:');
        void client.send('body\n');
        await client.readBytes('head:body\n'.length);
        times.push(performance.now() - t0);
      }
      await client.end();
      return times.sort((a, b) => a - b)[4]!;
    };
    const nagle = await medianMs(false);
    const noDelay = await medianMs(true);
    ctx.table('median round trip of a request written in two pieces (9 tries each)', ['socket', 'median'], [
      ['Nagle on (the default)', `${nagle.toFixed(2)} ms`],
      ['TCP_NODELAY', `${noDelay.toFixed(2)} ms`],
    ]);
    ctx.claim('with Nagle on, the second write waited for a delayed ACK (median at least 20 ms)', nagle >= 20, `${nagle.toFixed(1)} ms`);
    ctx.claim('with TCP_NODELAY, no such wait (median under 20 ms)', noDelay < 20, `${noDelay.toFixed(2)} ms`);
  },
});
