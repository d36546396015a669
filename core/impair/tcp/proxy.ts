import net from 'node:net';
import { ErrorCodes, InvalidOptionError, WirelabError } from '../../errors.ts';
import { checkBoolean, checkInt, checkPort, checkString, withDefaults } from '../../options.ts';
import { closeTcpServer, DEFAULT_HOST, listenTcp, SocketSet, type RunningServer } from '../../server.ts';
import { NOOP_TRACER, nextCid, type Tracer, type WireMask } from '../../trace/index.ts';
import { Prng, randomSeed } from '../prng.ts';
import { parseToxic, updateToxic, type Stream, type Toxic, type ToxicInput } from '../toxics.ts';
import { Link, type LinkHost } from './link.ts';
import { tapProxyLegs } from '../../capture/taps.ts';

export interface TcpProxyOptions {
  /** Shown in traces and the control API. Default `proxy`. */
  name?: string;
  /** Where the proxy listens. Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The server behind the proxy. */
  upstreamHost?: string;
  upstreamPort: number;
  /** Toxics present from the start. Default none. */
  toxics?: ToxicInput[];
  /** Connections open at once; more are refused (closed at once). Default 1024. */
  maxConnections?: number;
  /**
   * Bytes a direction may hold back (delayed or rate-limited) before it stops reading its source; TCP's own flow
   * control then slows the sender. Default 1 MiB.
   */
  maxBufferBytes?: number;
  /** Give up connecting to the upstream after this long (the client is reset). Default 5000 ms. */
  connectTimeoutMs?: number;
  /** TCP_NODELAY on both sides of each connection, as Go (so Toxiproxy) does. Default true. */
  noDelay?: boolean;
  /** Seed for jitter, slice sizes and toxicity draws, so a run replays. Default: from the clock (see `seed`). */
  seed?: number;
  tracer?: Tracer;
  /**
   * Masks secrets in the bytes traced on both legs (one mask per leg and connection), for a protocol whose
   * credentials are not text lines: pass the upstream server's `wireMask` (the MQTT door's masks the CONNECT password).
   * Default: text lines masked as the text servers' taps do (AUTH, PASS, LOGIN, Authorization).
   */
  wireMask?: () => WireMask;
}

export interface TcpProxyStats {
  /** Client connections accepted (refused ones excluded). */
  connections: number;
  active: number;
  refused: number;
  /** Upstream connections that failed (refused, timed out): each client was reset. */
  upstreamErrors: number;
  /** Bytes read from clients (upstream) and from the server (downstream). */
  bytesUp: number;
  bytesDown: number;
  /** How many times each toxic acted (a chunk delayed, sliced or dropped; a close held; a reset). */
  toxics: Record<string, number>;
  /** The most bytes one direction held back at once: stays near maxBufferBytes however fast the sender. */
  maxBufferedBytes: number;
}

/** Every default of TcpProxyOptions (`seed` defaults to one drawn from the clock, `toxics` to none). */
export const TCP_PROXY_DEFAULTS = Object.freeze({
  name: 'proxy',
  host: DEFAULT_HOST,
  port: 0,
  upstreamHost: DEFAULT_HOST,
  maxConnections: 1024,
  maxBufferBytes: 1024 * 1024,
  connectTimeoutMs: 5000,
  noDelay: true,
});

/**
 * A TCP proxy with Toxiproxy's toxics, changeable while connections are open. `upstream` is client → server.
 * Toxics apply per direction, each to a connection with probability `toxicity`.
 */
export class TcpImpairmentProxy implements RunningServer, LinkHost {
  readonly proto = 'tcp-proxy';
  readonly name: string;
  readonly host: string;
  /** Where new connections go; `setUpstream` changes it (open connections keep theirs). */
  upstreamHost: string;
  upstreamPort: number;
  readonly maxBufferBytes: number;
  readonly seed: number;
  readonly tracer: Tracer;
  readonly stats: TcpProxyStats = {
    connections: 0,
    active: 0,
    refused: 0,
    upstreamErrors: 0,
    bytesUp: 0,
    bytesDown: 0,
    toxics: {},
    maxBufferedBytes: 0,
  };
  port = 0;

  readonly #toxics: Toxic[] = [];
  readonly #links = new Set<Link>();
  readonly #sockets = new SocketSet();
  readonly #server: net.Server;
  readonly #prng: Prng;
  readonly #maxConnections: number;
  readonly #connectTimeoutMs: number;
  readonly #noDelay: boolean;
  readonly #wireMask: (() => WireMask) | undefined;
  #enabled = true;

  private constructor(options: TcpProxyOptions) {
    const o = withDefaults(TCP_PROXY_DEFAULTS, options);
    this.name = checkString('name', o.name);
    this.host = checkString('host', o.host);
    this.upstreamHost = checkString('upstreamHost', o.upstreamHost);
    this.upstreamPort = checkPort('upstreamPort', o.upstreamPort);
    checkPort('port', o.port);
    this.maxBufferBytes = checkInt('maxBufferBytes', o.maxBufferBytes, 1, 1024 * 1024 * 1024);
    this.#maxConnections = checkInt('maxConnections', o.maxConnections, 1, 1_000_000);
    this.#connectTimeoutMs = checkInt('connectTimeoutMs', o.connectTimeoutMs, 1, 600_000);
    this.seed = checkInt('seed', o.seed ?? randomSeed(), 0, 0xffffffff);
    this.#prng = new Prng(this.seed);
    this.tracer = o.tracer ?? NOOP_TRACER;
    for (const t of o.toxics ?? []) this.addToxic(t);
    // TCP_NODELAY on both sides by default: a proxy must not add Nagle delays the client did not ask for.
    this.#noDelay = checkBoolean('noDelay', o.noDelay);
    if (o.wireMask !== undefined && typeof o.wireMask !== 'function') throw new InvalidOptionError('wireMask', 'a function returning a mask', o.wireMask);
    this.#wireMask = o.wireMask;
    this.#server = net.createServer({ allowHalfOpen: true, noDelay: this.#noDelay }, (s) => this.#accept(s));
  }

  static async start(options: TcpProxyOptions): Promise<TcpImpairmentProxy> {
    const proxy = new TcpImpairmentProxy(options);
    proxy.port = await listenTcp(proxy.#server, options.port ?? TCP_PROXY_DEFAULTS.port, proxy.host);
    proxy.tracer.emit('impair', proxy.name, '*', 'listen', () => `proxy ${proxy.name} on ${proxy.host}:${proxy.port} → ${proxy.upstreamHost}:${proxy.upstreamPort}`);
    return proxy;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * Toxiproxy's `enabled`: a disabled proxy stops listening and closes every connection through it (clients then see
   * connection refused); enabling listens again on the same port.
   */
  async setEnabled(on: boolean): Promise<void> {
    if (on === this.#enabled) return;
    this.#enabled = on;
    if (on) {
      await listenTcp(this.#server, this.port, this.host);
    } else {
      for (const l of this.#links) l.finish();
      await closeTcpServer(this.#server, this.#sockets);
    }
    this.tracer.emit('impair', this.name, '*', on ? 'enabled' : 'disabled', () => `proxy ${this.name} ${on ? 'listening again' : 'stopped listening, connections closed'}`);
  }

  setUpstream(host: string, port: number): void {
    this.upstreamPort = checkPort('upstreamPort', port);
    this.upstreamHost = checkString('upstreamHost', host);
  }

  get toxics(): readonly Toxic[] {
    return this.#toxics;
  }

  toxicsFor(stream: Stream): Toxic[] {
    return this.#toxics.length === 0 ? this.#toxics : this.#toxics.filter((t) => t.stream === stream);
  }

  /** Adds a toxic to this proxy, open connections included. Throws WL_ERR_IMPAIR_INVALID (400) or _CONFLICT (409). */
  addToxic(input: ToxicInput | Toxic): Toxic {
    const toxic = parseToxic(input);
    if (this.#toxics.some((t) => t.name === toxic.name)) {
      throw new WirelabError(ErrorCodes.IMPAIR_CONFLICT, `toxic ${toxic.name} already exists on ${this.name}`, { status: 409 });
    }
    this.#toxics.push(toxic);
    this.stats.toxics[toxic.name] ??= 0;
    this.tracer.emit('impair', this.name, '*', 'toxic', () => ({ summary: `added ${describeToxic(toxic)}`, meta: { ...toxic } }));
    for (const l of this.#links) l.refresh();
    return toxic;
  }

  updateToxic(name: string, patch: unknown): Toxic {
    const i = this.#index(name);
    const toxic = updateToxic(this.#toxics[i]!, patch);
    this.#toxics[i] = toxic;
    this.tracer.emit('impair', this.name, '*', 'toxic', () => `updated ${describeToxic(toxic)}`);
    for (const l of this.#links) l.refresh();
    return toxic;
  }

  removeToxic(name: string): void {
    const [t] = this.#toxics.splice(this.#index(name), 1);
    this.tracer.emit('impair', this.name, '*', 'toxic', () => `removed ${t!.name}`);
  }

  /** Removes every toxic (Toxiproxy's POST /reset). */
  clearToxics(): void {
    this.#toxics.length = 0;
  }

  countToxic(name: string): void {
    this.stats.toxics[name] = (this.stats.toxics[name] ?? 0) + 1;
  }

  countBytes(stream: Stream, n: number): void {
    if (stream === 'upstream') this.stats.bytesUp += n;
    else this.stats.bytesDown += n;
  }

  noteBuffered(bytes: number): void {
    if (bytes > this.stats.maxBufferedBytes) this.stats.maxBufferedBytes = bytes;
  }

  /** Toxiproxy's proxy JSON, plus wirelab's counters. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      listen: `${this.host}:${this.port}`,
      upstream: `${this.upstreamHost}:${this.upstreamPort}`,
      enabled: this.#enabled,
      toxics: this.#toxics,
      stats: { ...this.stats, toxics: { ...this.stats.toxics } },
      seed: this.seed,
    };
  }

  async close(): Promise<void> {
    for (const l of this.#links) l.finish();
    if (this.#server.listening) await closeTcpServer(this.#server, this.#sockets);
    else this.#sockets.destroyAll();
    this.tracer.emit('impair', this.name, '*', 'closed', () => `proxy ${this.name} closed`);
  }

  #index(name: string): number {
    const i = this.#toxics.findIndex((t) => t.name === name);
    if (i === -1) throw new WirelabError(ErrorCodes.IMPAIR_NOT_FOUND, `no toxic ${name} on ${this.name}`, { status: 404 });
    return i;
  }

  #accept(client: net.Socket): void {
    const cid = nextCid('impair');
    if (this.stats.active >= this.#maxConnections) {
      this.stats.refused++;
      this.tracer.emit('impair', cid, '*', 'refused', () => `maxConnections=${this.#maxConnections} reached: closed at once`);
      client.destroy();
      return;
    }
    this.stats.connections++;
    this.stats.active++;
    this.#sockets.add(client);
    const peer = `${client.remoteAddress}:${client.remotePort}`;
    const upstream = net.connect({ host: this.upstreamHost, port: this.upstreamPort, allowHalfOpen: true, noDelay: this.#noDelay });
    this.#sockets.add(upstream);
    this.tracer.emit('impair', cid, '>', 'accept', () => `${peer} → proxy ${this.name} → ${this.upstreamHost}:${this.upstreamPort}`);
    // Both legs' bytes for the pcapng export, only when a sink wants them.
    tapProxyLegs(this.tracer, cid, client, upstream, this.#wireMask);
    let connected = false;
    const timer = setTimeout(() => upstream.destroy(new WirelabError(ErrorCodes.TIMEOUT, `connect timed out after ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
    upstream.once('connect', () => {
      connected = true;
      clearTimeout(timer);
    });
    // Each connection draws from its own stream, named by its order, so a run with the same seed replays.
    const link = new Link(cid, this, this.#prng.fork(`conn#${this.stats.connections}`), client, upstream);
    this.#links.add(link);
    // An error on one side resets the other: a refused upstream reaches the client as a reset, as Toxiproxy does.
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) this.stats.upstreamErrors++;
      this.tracer.emit('impair', cid, '*', 'error', () => `upstream ${err.code ?? ''} ${err.message}: resetting the client`);
      if (!client.destroyed) client.resetAndDestroy();
    });
    client.on('error', (err: NodeJS.ErrnoException) => {
      this.tracer.emit('impair', cid, '*', 'error', () => `client ${err.code ?? ''} ${err.message}: resetting the upstream`);
      if (!upstream.destroyed) upstream.resetAndDestroy();
    });
    let closed = 0;
    const onClose = (): void => {
      if (++closed < 2) return;
      clearTimeout(timer);
      link.finish();
      this.#links.delete(link);
      this.stats.active--;
      this.tracer.emit('impair', cid, '*', 'close', () => 'both ends closed');
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
  }
}

export function describeToxic(t: Toxic): string {
  const attrs = Object.entries(t.attributes).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${t.name} (${t.type} ${t.stream}${t.toxicity < 1 ? ` toxicity=${t.toxicity}` : ''}${attrs ? ` ${attrs}` : ''})`;
}

/** Starts a TCP impairment proxy in front of `upstreamPort`. */
export function startTcpProxy(options: TcpProxyOptions): Promise<TcpImpairmentProxy> {
  return TcpImpairmentProxy.start(options);
}
