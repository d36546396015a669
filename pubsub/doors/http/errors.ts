import { ErrorCodes, HttpError, PubsubError, WirelabError } from '../../../core/errors.ts';
import { json, type Ctx } from '../../../servers/http/index.ts';

/** The challenge a 401 carries: both schemes the door reads. */
export const WWW_AUTHENTICATE = 'Basic realm="wirelab-pubsub", charset="UTF-8", Bearer realm="wirelab-pubsub"';

/**
 * The broker's refusals as HTTP statuses (README "### HTTP" has this table). A limit maps by its name: a payload too
 * big is the request's fault (413), maxAckPending is the consumer's pace (429), the rest is the broker's capacity (503).
 */
export const STATUS_FOR_CODE: Readonly<Record<string, number>> = {
  [ErrorCodes.PUBSUB_AUTH]: 401,
  [ErrorCodes.PUBSUB_ACL]: 403,
  [ErrorCodes.PUBSUB_SIGNATURE]: 403,
  [ErrorCodes.PUBSUB_RATE]: 429,
  [ErrorCodes.PUBSUB_INVALID]: 400,
  [ErrorCodes.PUBSUB_DURABILITY]: 409,
  [ErrorCodes.PUBSUB_NOT_FOUND]: 404,
  [ErrorCodes.PUBSUB_CORRUPT]: 500,
  [ErrorCodes.PUBSUB_LIMIT]: 503,
};

export const STATUS_FOR_LIMIT: Readonly<Record<string, number>> = {
  maxPayloadBytes: 413,
  maxBodyBytes: 413,
  maxAckPending: 429,
};

/** Seconds a client should wait before trying again after a 429 or 503. */
export const RETRY_AFTER_SECONDS = 1;

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { status: number; code: string; limit?: string; detail: string };
}

/** The answer for an error a handler met: its status, headers (WWW-Authenticate, Retry-After) and a JSON body with the code. */
export function answerFor(err: unknown): ErrorAnswer {
  const headers: Record<string, string> = {};
  let status = 500;
  let code: string = ErrorCodes.HTTP_STATUS;
  let limit: string | undefined;
  if (err instanceof PubsubError) {
    code = err.code;
    limit = err.limit;
    status = (limit !== undefined ? STATUS_FOR_LIMIT[limit] : undefined) ?? STATUS_FOR_CODE[code] ?? 500;
  } else if (err instanceof HttpError) {
    status = err.status;
    code = err.code;
    Object.assign(headers, err.headers);
  } else if (err instanceof WirelabError) {
    code = err.code;
    status = typeof err.status === 'number' && err.status >= 400 && err.status < 600 ? err.status : 500;
  }
  if (status === 401) headers['www-authenticate'] = WWW_AUTHENTICATE;
  if (status === 429 || status === 503) headers['retry-after'] ??= String(RETRY_AFTER_SECONDS);
  const detail = status === 500 && !(err instanceof WirelabError) ? 'internal error; see the server trace' : err instanceof Error ? err.message : String(err);
  return { status, headers, body: { status, code, ...(limit !== undefined ? { limit } : {}), detail } };
}

/** Answers `err` as JSON (when the response has not started), returning the status. */
export function sendError(ctx: Ctx, err: unknown): number {
  const a = answerFor(err);
  if (a.status === 413 && ctx.req.httpVersionMajor === 1 && !ctx.req.complete) a.headers.connection = 'close';
  json(ctx, a.status, a.body, a.headers);
  return a.status;
}

export function invalid(message: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_INVALID, message);
}
