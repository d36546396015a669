/**
 * Errors with a stable `code` (tests assert the code, never the message), after undici's errors.js.
 *
 * Every error wirelab throws across its public API is a `WirelabError`: `err instanceof WirelabError` holds and
 * `err.code` starts with `WL_ERR_`. The protocol's own answer, where there is one, has its own field: `status` (an HTTP
 * status, a WebSocket close code, a POP3 `-ERR` text), `reply` (an FTP reply code), `responseCode` (an SMTP reply code:
 * smtp-server reads that field from the error a callback gets).
 *
 * One exception to single inheritance: `InvalidOptionError` must stay a `TypeError` (what a bad argument is in
 * JavaScript, and what callers and Node's own checks expect), so it extends TypeError and carries the brand instead;
 * `WirelabError[Symbol.hasInstance]` recognises the brand, so both `instanceof` tests hold (undici brands its errors
 * with `Symbol.for('undici.error.UND_ERR')` and a `Symbol.hasInstance` the same way). Subclasses keep the ordinary
 * prototype check.
 */
const BRAND = Symbol.for('wirelab.error');

export class WirelabError extends Error {
  readonly code: string;
  readonly status?: number | string;
  readonly [BRAND] = true;

  constructor(code: string, message: string, options: { cause?: unknown; status?: number | string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WirelabError';
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== WirelabError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
  }
}

export const ErrorCodes = {
  INVALID_OPTION: 'WL_ERR_INVALID_OPTION',
  /** A command line the CLI cannot run (unknown flag, missing value...). */
  USAGE: 'WL_ERR_USAGE',
  DATAGRAM_TOO_LARGE: 'WL_ERR_DATAGRAM_TOO_LARGE',
  LINE_TOO_LONG: 'WL_ERR_LINE_TOO_LONG',
  FRAME_TOO_LONG: 'WL_ERR_FRAME_TOO_LONG',
  TIMEOUT: 'WL_ERR_TIMEOUT',
  CLOSED: 'WL_ERR_CLOSED',
  PORT_IN_USE: 'WL_ERR_PORT_IN_USE',
  LAB_NOT_FOUND: 'WL_ERR_LAB_NOT_FOUND',
  LAB_INVALID: 'WL_ERR_LAB_INVALID',
  /** tcpdump could not be started or stopped early (core/capture). */
  CAPTURE_FAILED: 'WL_ERR_CAPTURE_FAILED',
  /** A trace file could not be read or an export could not be written (core/trace/read.ts, core/export/pcapng). */
  TRACE_FILE: 'WL_ERR_TRACE_FILE',
  /** An HTTP request answered with an error status (`status`); the HTTP server and the impairment control API. */
  HTTP_STATUS: 'WL_ERR_HTTP_STATUS',
  /** A request body over the server's maxBodyBytes (status 413). */
  HTTP_BODY_TOO_LARGE: 'WL_ERR_HTTP_BODY_TOO_LARGE',
  /** An FTP path outside the user's root, malformed, or refused by the file system (reply 550). */
  FTP_PATH_REFUSED: 'WL_ERR_FTP_PATH_REFUSED',
  /** An upload past the user's quotaBytes (reply 552). */
  FTP_QUOTA_EXCEEDED: 'WL_ERR_FTP_QUOTA_EXCEEDED',
  /** An FTP data connection that did not open, or closed, or idled out (reply 425 / 426). */
  FTP_DATA_CONNECTION: 'WL_ERR_FTP_DATA_CONNECTION',
  /** An SMTP command refused by the server (`responseCode`: 421, 452, 535, 552...). */
  SMTP_REFUSED: 'WL_ERR_SMTP_REFUSED',
  MAIL_NO_SUCH_USER: 'WL_ERR_MAIL_NO_SUCH_USER',
  MAIL_NO_SUCH_MAILBOX: 'WL_ERR_MAIL_NO_SUCH_MAILBOX',
  MAIL_MAILBOX_EXISTS: 'WL_ERR_MAIL_MAILBOX_EXISTS',
  MAIL_NOT_ALLOWED: 'WL_ERR_MAIL_NOT_ALLOWED',
  MAIL_PROTOCOL: 'WL_ERR_MAIL_PROTOCOL',
  /** A DNS message that does not parse (labs/measure/dns.ts: a truncated header, a name past the end). */
  DNS_MALFORMED: 'WL_ERR_DNS_MALFORMED',
  /** An impairment (toxic, UDP impairment, --impair spec) that names an unknown kind or an out-of-range value. */
  IMPAIR_INVALID: 'WL_ERR_IMPAIR_INVALID',
  /** A proxy or toxic the control API does not know. */
  IMPAIR_NOT_FOUND: 'WL_ERR_IMPAIR_NOT_FOUND',
  /** A proxy or toxic name already in use. */
  IMPAIR_CONFLICT: 'WL_ERR_IMPAIR_CONFLICT',
  /** Kernel mode needs root, ip and nft; says which is missing. */
  KERNEL_UNAVAILABLE: 'WL_ERR_KERNEL_UNAVAILABLE',
  SIGNALING: 'WL_ERR_SIGNALING',
  WEBRTC_MESSAGE_TOO_BIG: 'WL_ERR_WEBRTC_MESSAGE_TOO_BIG',
  WEBRTC_FAILED: 'WL_ERR_WEBRTC_FAILED',
  /** A client's queue of received, unread messages passed its `maxQueued` limit: the connection is closed. */
  QUEUE_FULL: 'WL_ERR_QUEUE_FULL',
  // ---- pub/sub (issue 12): the broker's refusals; every door maps them onto its protocol's answer ----
  /** Bad or missing credentials, or a password offered over cleartext when the broker does not allow it. */
  PUBSUB_AUTH: 'WL_ERR_PUBSUB_AUTH',
  /** The user's publish / subscribe permissions do not cover the topic. */
  PUBSUB_ACL: 'WL_ERR_PUBSUB_ACL',
  /** A broker limit reached (`limit` names it: maxConnections, maxTopics, maxSubscriptionsPerConnection, maxPayloadBytes, maxAckPending...). */
  PUBSUB_LIMIT: 'WL_ERR_PUBSUB_LIMIT',
  /** The publisher's token bucket is empty. */
  PUBSUB_RATE: 'WL_ERR_PUBSUB_RATE',
  /** A signed message whose signature does not verify, or an unsigned one where signing is required. */
  PUBSUB_SIGNATURE: 'WL_ERR_PUBSUB_SIGNATURE',
  /** A malformed topic, pattern, header or request. */
  PUBSUB_INVALID: 'WL_ERR_PUBSUB_INVALID',
  /** acks=all asked of a log whose fsync policy is 'never'. */
  PUBSUB_DURABILITY: 'WL_ERR_PUBSUB_DURABILITY',
  /** An unknown topic, group, subscription or delivery id. */
  PUBSUB_NOT_FOUND: 'WL_ERR_PUBSUB_NOT_FOUND',
  /** A record whose CRC does not match, found when reading (a torn tail is truncated at open instead). */
  PUBSUB_CORRUPT: 'WL_ERR_PUBSUB_CORRUPT',
  /** The engine cannot take the request within the wait its options allow (a NATS cluster without quorum, no stream leader, connection lost). */
  PUBSUB_UNAVAILABLE: 'WL_ERR_PUBSUB_UNAVAILABLE',
  // ---- schema registry (pubsub/schema): `status` is the HTTP status, `errorCode` Confluent's error_code ----
  /** Not a valid Avro schema / JSON Schema, a bad version, a bad compatibility level, or a payload that does not fit (422). */
  SCHEMA_INVALID: 'WL_ERR_SCHEMA_INVALID',
  /** A schema that breaks the subject's compatibility rule (409). */
  SCHEMA_INCOMPATIBLE: 'WL_ERR_SCHEMA_INCOMPATIBLE',
  /** No such subject, version or schema id (404). */
  SCHEMA_NOT_FOUND: 'WL_ERR_SCHEMA_NOT_FOUND',
} as const;

/** A pub/sub refusal: `code` is one of the PUBSUB_* codes; `limit` names the limit for WL_ERR_PUBSUB_LIMIT. */
export class PubsubError extends WirelabError {
  readonly limit?: string;
  constructor(code: string, message: string, options: { cause?: unknown; limit?: string } = {}) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'PubsubError';
    if (options.limit !== undefined) this.limit = options.limit;
  }
}

/**
 * A bad option: thrown when an object is built, naming the option (`option`) and, for a renamed one, the new name.
 * A TypeError and a WirelabError at once (see above).
 */
export class InvalidOptionError extends TypeError {
  readonly code = ErrorCodes.INVALID_OPTION;
  readonly [BRAND] = true;
  /** For an option that was renamed: the name to use now. */
  readonly renamedTo?: string;
  constructor(
    readonly option: string,
    expected: string,
    got: unknown,
    options: { renamedTo?: string } = {},
  ) {
    super(
      options.renamedTo === undefined
        ? `invalid option ${option}: expected ${expected}, got ${describe(got)}`
        : `option ${option} was renamed: pass ${options.renamedTo} instead`,
    );
    this.name = 'InvalidOptionError';
    if (options.renamedTo !== undefined) this.renamedTo = options.renamedTo;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v == null) return String(v);
  return typeof v;
}

/**
 * An HTTP error status, thrown by an HTTP server's handler (servers/http) or the impairment control API: the server
 * answers with `status` and `headers` (Allow, Retry-After...), and closes the connection after it when
 * `closeConnection` (a body it will not read).
 */
export class HttpError extends WirelabError {
  declare readonly status: number;
  readonly headers: Record<string, string>;
  readonly closeConnection: boolean;
  constructor(
    status: number,
    message: string,
    options: { code?: string; headers?: Record<string, string>; closeConnection?: boolean } = {},
  ) {
    super(options.code ?? ErrorCodes.HTTP_STATUS, message, { status });
    this.name = 'HttpError';
    this.headers = options.headers ?? {};
    this.closeConnection = options.closeConnection ?? false;
  }
}
