/**
 * A trace as a sequence diagram: lanes per endpoint, one arrow per command, frame or datagram (each event with a
 * direction), time on the side, datagrams the impairment relay dropped drawn as lost. As Mermaid `sequenceDiagram` text
 * here, and as a self-contained SVG in diagram-svg.ts.
 */
import { FanoutTracer, forwardTo, type Dir, type EventBody, type TraceEvent, type TraceSink, type Tracer } from '../trace/index.ts';

export interface DiagramOptions {
  /** Arrows drawn at most; the rest are counted in one "N more" line. Default 400. */
  maxArrows?: number;
  /** Characters of an arrow's label; longer summaries are cut with "…". Default 64. */
  maxLabelChars?: number;
}

export const DIAGRAM_DEFAULTS = Object.freeze({ maxArrows: 400, maxLabelChars: 64 });

export interface DiagramArrow {
  /** Milliseconds, as the event's `t`. */
  t: number;
  from: number;
  to: number;
  label: string;
  /** A datagram the relay dropped (or a queue refused): drawn ending in a cross half-way. */
  lost: boolean;
  /** `<` (an answer): drawn dashed. */
  reply: boolean;
  cid: string;
}

export interface DiagramModel {
  lanes: string[];
  arrows: DiagramArrow[];
  /** Directional events not drawn because of maxArrows. */
  omitted: number;
  maxArrows: number;
}

const LOST_FATES = new Set(['lost', 'queue-full', 'no-session']);

/** True when the event says its datagram (or message) never arrived. */
export function isLost(e: TraceEvent): boolean {
  const fate = e.meta?.fate;
  return (typeof fate === 'string' && LOST_FATES.has(fate)) || e.kind === 'drop' || e.kind === 'lost';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/**
 * The client and server endpoints of an event. Events that name their endpoints (`local` / `remote` with a `role`, or
 * `src` / `dst`, on the event or in its meta) get a lane per address; the others a lane per protocol and side.
 */
export function endpointsOf(e: TraceEvent): { client: string; server: string } {
  const x = e as unknown as Record<string, unknown>;
  const m = e.meta ?? {};
  const local = str(x.local) ?? str(m.local);
  const remote = str(x.remote) ?? str(m.remote);
  const role = str(x.role) ?? str(m.role);
  if (local && remote && (role === 'client' || role === 'server')) {
    return role === 'client' ? { client: `${e.proto} ${local}`, server: `${e.proto} ${remote}` } : { client: `${e.proto} ${remote}`, server: `${e.proto} ${local}` };
  }
  const src = str(x.src) ?? str(m.src);
  const dst = str(x.dst) ?? str(m.dst);
  if (src && dst) return e.dir === '>' ? { client: src, server: dst } : { client: dst, server: src };
  if (e.proto === 'impair') return { client: `${e.cid.split('#')[0]} (client side)`, server: `${e.cid.split('#')[0]} (server side)` };
  return { client: `${e.proto} client`, server: `${e.proto} server` };
}

function cut(s: string, max: number): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** The diagram of a trace: every event with a direction becomes an arrow, in time order, up to maxArrows. */
export function buildDiagram(events: Iterable<TraceEvent>, options: DiagramOptions = {}): DiagramModel {
  const maxArrows = options.maxArrows ?? DIAGRAM_DEFAULTS.maxArrows;
  const maxLabel = options.maxLabelChars ?? DIAGRAM_DEFAULTS.maxLabelChars;
  const lanes: string[] = [];
  const index = new Map<string, number>();
  const lane = (name: string): number => {
    let i = index.get(name);
    if (i === undefined) {
      i = lanes.length;
      lanes.push(name);
      index.set(name, i);
    }
    return i;
  };
  const arrows: DiagramArrow[] = [];
  let omitted = 0;
  const sorted = [...events].filter((e) => e.dir !== '*').sort((a, b) => a.t - b.t);
  for (const e of sorted) {
    if (arrows.length >= maxArrows) {
      omitted++;
      continue;
    }
    const ends = endpointsOf(e);
    const client = lane(ends.client);
    const server = lane(ends.server);
    const size = e.bytes === undefined ? '' : ` (${e.bytes} B)`;
    const lost = isLost(e);
    arrows.push({
      t: e.t,
      from: e.dir === '>' ? client : server,
      to: e.dir === '>' ? server : client,
      label: cut(`${e.cid} ${e.kind}: ${e.summary}${size}${lost ? ' LOST' : ''}`, maxLabel),
      lost,
      reply: e.dir === '<',
      cid: e.cid,
    });
  }
  return { lanes, arrows, omitted, maxArrows };
}

const MERMAID_ESCAPES: Record<string, string> = { '#': '#35;', ';': '#59;', '<': '#lt;', '>': '#gt;' };

/**
 * Keeps what a diagram draws while a lab runs: the first maxArrows events with a direction, without their payloads,
 * and a count of the rest (a lab moving 100 MiB keeps a few hundred small objects, not the bytes). Attached to a
 * fan-out, it detaches itself once full, so it no longer makes the tracer build events.
 */
export class DiagramSink implements TraceSink {
  readonly events: TraceEvent[] = [];
  omitted = 0;
  readonly #max: number;
  #detach: (() => void) | undefined;

  constructor(options: DiagramOptions = {}) {
    this.#max = options.maxArrows ?? DIAGRAM_DEFAULTS.maxArrows;
  }

  attached(detach: () => void): void {
    this.#detach = detach;
    if (this.full) detach();
  }

  write(event: TraceEvent): void {
    if (event.dir === '*') return;
    if (this.events.length >= this.#max) {
      this.omitted++;
      return;
    }
    const { data: _payload, ...kept } = event;
    this.events.push(kept);
    if (this.full) this.#detach?.();
  }

  /** True once maxArrows events are kept: later ones are only counted. */
  get full(): boolean {
    return this.events.length >= this.#max;
  }

  model(options: DiagramOptions = {}): DiagramModel {
    const m = buildDiagram(this.events, { maxArrows: this.#max, ...options });
    return { ...m, omitted: m.omitted + this.omitted };
  }
}

/**
 * A tracer for `--diagram` / `--report`: the fan-out (core/trace/tracer.ts) with a DiagramSink and, when `forward` (the
 * user's tracer) is on, a sink forwarding every event to it. The diagram leaves the fan-out once full: past maxArrows,
 * with no user tracer, `enabled` is false and a lab moving 100 MiB pays one call per event, as with tracing off; the
 * events still emitted are counted as omitted (a call site that checks `enabled` first is not counted: "N more" is
 * then a lower bound).
 */
export class DiagramTracer extends FanoutTracer {
  readonly sink: DiagramSink;
  readonly #forwarding: boolean;

  constructor(forward?: Tracer, options: DiagramOptions = {}) {
    super([], { libs: forward?.libs ?? false });
    this.#forwarding = forward?.enabled === true;
    if (forward?.enabled) this.attach(forwardTo(forward));
    this.sink = new DiagramSink(options);
    this.attach(this.sink);
  }

  override emit(proto: string, cid: string, dir: Dir, kind: string, build: () => EventBody): void {
    if (dir === '*') {
      // A diagram draws no state change: built only for the user's tracer.
      if (this.#forwarding) super.emit(proto, cid, dir, kind, build);
      return;
    }
    if (this.sink.full) this.sink.omitted++;
    super.emit(proto, cid, dir, kind, build);
  }

  /** The user's tracer is closed by whoever made it. */
  override async close(): Promise<void> {}
}

/** Text safe in a Mermaid message or participant name: `#`, `;`, `<`, `>` as Mermaid entity codes. */
export function mermaidText(s: string): string {
  return s.replace(/[#;<>\r\n]/g, (c) => MERMAID_ESCAPES[c] ?? ' ');
}

function ms(t: number): string {
  return t >= 1000 ? `${(t / 1000).toFixed(3)} s` : `${t.toFixed(2)} ms`;
}

/** Mermaid `sequenceDiagram` text: one participant per lane, one message per arrow with its time first. */
export function toMermaid(model: DiagramModel, title?: string): string {
  const lines = ['sequenceDiagram'];
  if (title) lines.push(`  title ${mermaidText(title)}`);
  model.lanes.forEach((name, i) => lines.push(`  participant L${i} as ${mermaidText(name)}`));
  for (const a of model.arrows) {
    const arrow = a.lost ? (a.reply ? '--x' : '-x') : a.reply ? '-->>' : '->>';
    lines.push(`  L${a.from}${arrow}L${a.to}: [${ms(a.t)}] ${mermaidText(a.label)}`);
  }
  if (model.omitted > 0 && model.lanes.length > 0) {
    const over = model.lanes.length > 1 ? `L0,L${model.lanes.length - 1}` : 'L0';
    lines.push(`  Note over ${over}: ${model.omitted} more not drawn (maxArrows=${model.maxArrows})`);
  }
  if (model.lanes.length === 0) lines.push('  participant L0 as (no traced event with a direction)');
  return lines.join('\n') + '\n';
}

export { toSvg } from './diagram-svg.ts';
