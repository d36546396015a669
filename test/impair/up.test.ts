import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { connectTcp } from '../../clients/tcp.ts';
import { openUdp } from '../../clients/udp.ts';
import { parseImpairSpecs } from '../../core/impair/cli.ts';
import { CLI, runCli } from '../helpers/cli.ts';

test('--impair specs parse into toxics and UDP impairments, per direction', () => {
  const [a, b] = parseImpairSpecs(['tcp-echo:latency=20ms,jitter@down=5ms,bandwidth=1mbit;udp:loss=5%,burst=1%/30%,seed=9']);
  assert.equal(a!.target, 'tcp-echo');
  assert.deepEqual(a!.tcp.downstream.find((t) => t.type === 'latency')!.attributes, { latency: 20, jitter: 5 });
  assert.deepEqual(a!.tcp.upstream.find((t) => t.type === 'latency')!.attributes, { latency: 20, jitter: 0 });
  assert.equal(a!.tcp.upstream.find((t) => t.type === 'bandwidth')!.attributes.rate, 125);
  assert.equal(b!.udp.upstream.loss, 0.05);
  assert.deepEqual(b!.udp.downstream.gilbert, { p: 0.01, r: 0.3, lossGood: 0, lossBad: 1 });
  assert.equal(b!.seed, 9);
  for (const wrong of ['latency=fast', 'warp=1', 'loss=150%', 'tcp-echo:', 'bandwidth=0kbit']) {
    assert.throws(() => parseImpairSpecs(wrong), { code: 'WL_ERR_IMPAIR_INVALID' }, wrong);
  }
});

test('wirelab up --impair: a usage error exits 2 naming the problem', async () => {
  for (const [spec, words] of [['nosuch:latency=1ms', /no service or transport nosuch/], ['tcp-echo:loss=5%', /loss cannot apply to tcp-echo/], ['latency=soon', /expected a time/]] as const) {
    const r = await runCli(['up', '--port-base', '0', '--impair', spec]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, words);
  }
});

test('wirelab up --impair puts servers behind the proxy and the relay, changeable through the control API', async () => {
  const child = spawn(process.execPath, [CLI, 'up', '--port-base', '0', '--json', '--impair', 'tcp-echo:latency@down=30ms', '--impair', 'udp:loss@up=100%'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const rows = await new Promise<Array<{ name: string; port: number; url?: string; impairment?: string }>>((resolve) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out));
      });
    });
    const row = (n: string) => rows.find((r) => r.name === n)!;
    assert.equal(row('tcp-echo').impairment, 'latency@down=30ms');
    const c = await connectTcp({ port: row('tcp-echo').port, framing: 'line' });
    const t0 = performance.now();
    await c.send('hi');
    assert.equal((await c.next()).toString(), 'hi');
    assert.ok(performance.now() - t0 >= 29);
    await c.end();
    const api = row('impair-control').url!;
    const proxy = (await (await fetch(`${api}/proxies/tcp-echo`)).json()) as { stats: { toxics: Record<string, number> } };
    assert.equal(proxy.stats.toxics.latency_downstream, 1);

    const u = await openUdp({ port: row('udp-echo').port });
    await assert.rejects(u.echo('lost', 300), { code: 'WL_ERR_TIMEOUT' });
    const res = await fetch(`${api}/relays/udp-echo/impairments`, { method: 'POST', body: JSON.stringify({ stream: 'upstream' }) });
    assert.equal(res.status, 200);
    assert.equal((await u.echo('through', 2000)).bytes, 16 + 7);
    await u.close();
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  }
});
