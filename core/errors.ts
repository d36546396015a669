/**
 * Errors with a stable `code` (tests assert the code, never the message), after undici's errors.js.
 * `status` carries the protocol's own answer where there is one (an SMTP reply code, an HTTP status...).
 */
export class WirelabError extends Error {
  readonly code: string;
  readonly status?: number | string;

  constructor(code: string, message: string, options: { cause?: unknown; status?: number | string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WirelabError';
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
  }
}

export const ErrorCodes = {
  INVALID_OPTION: 'WL_ERR_INVALID_OPTION',
  DATAGRAM_TOO_LARGE: 'WL_ERR_DATAGRAM_TOO_LARGE',
  LINE_TOO_LONG: 'WL_ERR_LINE_TOO_LONG',
  FRAME_TOO_LONG: 'WL_ERR_FRAME_TOO_LONG',
  TIMEOUT: 'WL_ERR_TIMEOUT',
  CLOSED: 'WL_ERR_CLOSED',
  PORT_IN_USE: 'WL_ERR_PORT_IN_USE',
  LAB_NOT_FOUND: 'WL_ERR_LAB_NOT_FOUND',
  LAB_INVALID: 'WL_ERR_LAB_INVALID',
  MAIL_NO_SUCH_USER: 'WL_ERR_MAIL_NO_SUCH_USER',
  MAIL_NO_SUCH_MAILBOX: 'WL_ERR_MAIL_NO_SUCH_MAILBOX',
  MAIL_MAILBOX_EXISTS: 'WL_ERR_MAIL_MAILBOX_EXISTS',
  MAIL_NOT_ALLOWED: 'WL_ERR_MAIL_NOT_ALLOWED',
  MAIL_PROTOCOL: 'WL_ERR_MAIL_PROTOCOL',
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
} as const;
