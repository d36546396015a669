/** `>` client to server, `<` server to client, `*` a local state change (listening, closed, timeout...). */
export type Dir = '>' | '<' | '*';

/** One traced thing: a command, a frame, a datagram, a read, a handshake step. The shape of DESIGN.md. */
export interface TraceEvent {
  /** Milliseconds since the tracer started (fractional). */
  t: number;
  /** Protocol: tcp, udp, tls, http, ws, smtp, imap, pop3, ftp, webrtc, lab... */
  proto: string;
  /** Connection id, e.g. `tcp#3`: one per connection or socket, unique in the process. */
  cid: string;
  dir: Dir;
  /** What happened: connect, read, write, frame, datagram, close, handshake, error... */
  kind: string;
  /** One line a person reads. Secrets are already redacted here. */
  summary: string;
  /** Payload size, when the event carries one. */
  bytes?: number;
  /** Structured details (numbers, flags) for JSON consumers. */
  meta?: Record<string, unknown>;
  /** The payload itself, for `--hex` dumps and capture exporters. Never holds a secret. */
  data?: Uint8Array;
  /** Absolute time, epoch milliseconds (fractional, µs precision). Set by the tracer. */
  ts?: number;
  /** Which end of the connection emitted the event. Set on every event of a connection whose ends are known. */
  role?: Role;
  /**
   * The conversation: both ends of one connection share it. `tcp:client-ip:port>server-ip:port` (or `udp:`), from
   * the 4-tuple, so a client and a server traced in different processes still pair.
   */
  conv?: string;
  /** This end's address `ip:port`: on the connect / accept event (and on each UDP datagram of a server socket). */
  local?: string;
  /** The other end's address `ip:port`, next to `local`. */
  remote?: string;
}

export type Role = 'client' | 'server';

/** The ends of a connection, as `socketEnds` returns them for a connect / accept event. */
export interface Ends {
  role: Role;
  conv: string;
  local: string;
  remote: string;
}

/** What a call site hands over; built only when tracing is on. */
export type EventBody =
  | string
  | { summary: string; bytes?: number; meta?: Record<string, unknown>; data?: Uint8Array; ts?: number; role?: Role; conv?: string; local?: string; remote?: string };

export interface TraceSink {
  write(event: TraceEvent): void;
  /** Set when the sink uses the bytes on the wire (kind `bytes` events): taps are only attached when one does. */
  readonly wantsWire?: boolean;
  /**
   * False when the sink shows only each event's one-line summary (the pretty terminal): call sites then skip the
   * details they would build for `meta` (header lists, HTTP exchanges and bodies for HAR). Default true.
   */
  readonly wantsDetail?: boolean;
  /** Called by a fan-out when the sink is attached, with its detach: a sink that wants no more events calls it. */
  attached?(detach: () => void): void;
  close?(): Promise<void> | void;
}

export interface Tracer {
  /** False for the no-op tracer: call sites may skip work (the build function is never called anyway). */
  readonly enabled: boolean;
  /** True when the libraries' own debug logs (nodemailer, imapflow, basic-ftp) should become events (`--trace-libs`). */
  readonly libs?: boolean;
  /** True when a sink wants the bytes on the wire (`bytes` events from socket taps): pcapng, JSON lines, `--hex`. */
  readonly wire?: boolean;
  /**
   * False when no sink wants more than summaries (only the pretty terminal is on): a call site may then leave out
   * `meta` details that cost work per event (header lists, HAR exchanges, captured bodies). Undefined counts as true.
   */
  readonly detail?: boolean;
  /**
   * Records an event. `build` runs only when tracing is on, so a summary string costs nothing when it is off.
   */
  emit(proto: string, cid: string, dir: Dir, kind: string, build: () => EventBody): void;
  /** Flushes and closes every sink. */
  close(): Promise<void>;
}
