import { ErrorCodes, WirelabError } from '../../core/errors.ts';

/** An FTP failure with the reply code it is answered with (`reply`); `code` is wirelab's stable WL_ERR_FTP_... code. */
export class FtpError extends WirelabError {
  constructor(
    code: string,
    readonly reply: number,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = 'FtpError';
  }
}

/** A path outside the user's root, malformed, or refused by the file system: 550 with `reason` (never the real path). */
export class PathRefused extends FtpError {
  constructor(readonly reason: string) {
    super(ErrorCodes.FTP_PATH_REFUSED, 550, reason);
    this.name = 'PathRefused';
  }
}

/** An upload past the user's quota: 552. */
export class QuotaExceeded extends FtpError {
  constructor(message: string) {
    super(ErrorCodes.FTP_QUOTA_EXCEEDED, 552, message);
    this.name = 'QuotaExceeded';
  }
}

/** A data connection that did not open in time (425), or closed or idled out (426). */
export function dataConnectionError(reply: 425 | 426, message: string): FtpError {
  return new FtpError(ErrorCodes.FTP_DATA_CONNECTION, reply, message);
}
