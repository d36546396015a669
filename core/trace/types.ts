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
}

/** What a call site hands over; built only when tracing is on. */
export type EventBody = string | { summary: string; bytes?: number; meta?: Record<string, unknown>; data?: Uint8Array };

export interface TraceSink {
  write(event: TraceEvent): void;
  close?(): Promise<void> | void;
}

export interface Tracer {
  /** False for the no-op tracer: call sites may skip work (the build function is never called anyway). */
  readonly enabled: boolean;
  /**
   * Records an event. `build` runs only when tracing is on, so a summary string costs nothing when it is off.
   */
  emit(proto: string, cid: string, dir: Dir, kind: string, build: () => EventBody): void;
  /** Flushes and closes every sink. */
  close(): Promise<void>;
}
