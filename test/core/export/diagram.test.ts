import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { openUdp } from '../../../clients/udp.ts';
import { buildDiagram, DiagramTracer, toMermaid, toSvg } from '../../../core/export/diagram.ts';
import { startUdpRelay } from '../../../core/impair/index.ts';
import { createTracer, MemorySink, type TraceEvent } from '../../../core/trace/index.ts';
import { datagramSeq } from '../../../protocols/datagram.ts';
import { startUdpServer } from '../../../servers/udp/index.ts';

/** 30 datagrams through a relay dropping ~30 % upstream, echoed back: the client's, relay's and server's events. */
async function lossyTrace(): Promise<{ events: TraceEvent[]; lostUpstream: number }> {
  const sink = new MemorySink();
  const tracer = createTracer([sink]);
  const server = await startUdpServer({ tracer });
  const relay = await startUdpRelay({ upstreamPort: server.port, upstream: { loss: 0.3 }, seed: 7, sequenceOf: datagramSeq, tracer });
  const client = await openUdp({ port: relay.port, tracer });
  let echoed = 0;
  client.onMessage(() => echoed++);
  try {
    for (let i = 0; i < 30; i++) await client.send(`datagram ${i}`);
    const deadline = Date.now() + 10_000;
    const delivered = (): number => relay.records.filter((r) => r.stream === 'upstream' && r.fate === 'delivered').length;
    while (Date.now() < deadline && (relay.records.filter((r) => r.stream === 'upstream').length < 30 || echoed < delivered())) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return { events: [...sink.events], lostUpstream: relay.records.filter((r) => r.stream === 'upstream' && r.fate === 'lost').length };
  } finally {
    await client.close();
    await relay.close();
    await server.close();
  }
}

const trace = lossyTrace();

/** Python's xml.etree (a parser nobody here wrote): the SVG's arrow groups, lost ones, and "more" lines, or the parse error. */
function parseSvg(svg: string): { arrows: number; lost: number; more: number } {
  const script = `
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
ns = '{http://www.w3.org/2000/svg}'
gs = [g.get('class', '') for g in root.iter(ns + 'g')]
more = [t for t in root.iter(ns + 'text') if t.get('class') == 'more']
print(sum(1 for c in gs if c.split()[:1] == ['arrow']), sum(1 for c in gs if 'lost' in c.split()), len(more))`;
  const r = spawnSync('python3', ['-c', script], { input: svg, encoding: 'utf8' });
  assert.equal(r.status, 0, `python3 could not parse the SVG: ${r.stderr}`);
  const [arrows, lost, more] = r.stdout.trim().split(' ').map(Number);
  return { arrows: arrows!, lost: lost!, more: more! };
}

/** Each line of Mermaid sequenceDiagram text that wirelab writes, by shape. */
const MERMAID_LINE = [
  /^sequenceDiagram$/,
  /^ {2}title [^;#<>\n]*(#(35|59|lt|gt);[^;#<>\n]*)*$/,
  /^ {2}participant L\d+ as [^;#<>\n]*(#(35|59|lt|gt);[^;#<>\n]*)*$/,
  /^ {2}L\d+(->>|-->>|-x|--x)L\d+: \[[\d.]+ m?s\] [^;#<>\n]*(#(35|59|lt|gt);[^;#<>\n]*)*$/,
  /^ {2}Note over L\d+(,L\d+)?: \d+ more not drawn \(maxArrows=\d+\)$/,
];

test('one arrow per event with a direction, the datagrams the relay dropped drawn as lost, in Mermaid and SVG', async () => {
  const { events, lostUpstream } = await trace;
  const directional = events.filter((e) => e.dir !== '*');
  assert.ok(lostUpstream > 0, 'the relay dropped some datagrams');
  const model = buildDiagram(events, { maxArrows: 10_000 });
  assert.equal(model.arrows.length, directional.length);
  assert.equal(model.omitted, 0);
  assert.equal(model.arrows.filter((a) => a.lost).length, lostUpstream);
  for (let i = 1; i < model.arrows.length; i++) assert.ok(model.arrows[i]!.t >= model.arrows[i - 1]!.t, 'in time order');
  // Lanes are per endpoint when events carry their addresses (the tracer records them on UDP sockets), else per side.
  const udpLanes = model.lanes.filter((l) => l.startsWith('udp '));
  assert.ok(udpLanes.length >= 2, `a client and a server lane in ${model.lanes.join(' | ')}`);

  const mmd = toMermaid(model, 'udp; through a <lossy> relay #1');
  const lines = mmd.trimEnd().split('\n');
  for (const line of lines) assert.ok(MERMAID_LINE.some((re) => re.test(line)), `not a Mermaid line wirelab writes: ${line}`);
  assert.equal(lines.filter((l) => /^ {2}L\d+(->>|-->>|-x|--x)L\d+:/.test(l)).length, directional.length);
  assert.equal(lines.filter((l) => /^ {2}L\d+--?xL\d+:/.test(l)).length, lostUpstream);

  const svg = parseSvg(toSvg(model, 'udp & a <lossy> relay'));
  assert.deepEqual(svg, { arrows: directional.length, lost: lostUpstream, more: 0 });
});

test('maxArrows cuts the diagram and says how many more', async () => {
  const { events } = await trace;
  const directional = events.filter((e) => e.dir !== '*').length;
  const model = buildDiagram(events, { maxArrows: 10 });
  assert.equal(model.arrows.length, 10);
  assert.equal(model.omitted, directional - 10);
  assert.match(toMermaid(model), new RegExp(`Note over L0,L\\d+: ${directional - 10} more not drawn \\(maxArrows=10\\)`));
  assert.deepEqual(parseSvg(toSvg(model)), { arrows: 10, lost: model.arrows.filter((a) => a.lost).length, more: 1 });
});

test('DiagramTracer builds an event only while the diagram keeps it, and counts the rest', async () => {
  const { events } = await trace;
  const tracer = new DiagramTracer(undefined, { maxArrows: 5 });
  let built = 0;
  for (const e of events) {
    tracer.emit(e.proto, e.cid, e.dir, e.kind, () => {
      built++;
      return { summary: e.summary, ...(e.meta ? { meta: e.meta } : {}), ...(e.data ? { data: e.data } : {}) };
    });
  }
  const directional = events.filter((e) => e.dir !== '*').length;
  assert.equal(built, 5, 'state events and events past maxArrows are never built');
  assert.ok(tracer.sink.events.every((e) => e.data === undefined), 'payloads are not kept');
  const model = tracer.sink.model();
  assert.equal(model.arrows.length, 5);
  assert.equal(model.omitted, directional - 5);
});
