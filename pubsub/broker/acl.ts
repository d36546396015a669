/**
 * Per-user permissions, the NATS model: `publish` and `subscribe` each take `allow` and `deny` lists of topics or
 * patterns (`*`, `>`). A list left out allows everything; deny wins over allow.
 * - publish to topic T: refused when a deny pattern matches T, or an allow list exists and no entry matches T.
 * - subscribe to pattern P: refused when a deny entry covers all of P, or an allow list exists and no entry covers P.
 *   A deny that covers only part of P (deny `orders.secret`, subscribe `orders.>`) leaves the subscription in place
 *   and filters: messages on denied topics are never delivered to it (acked for it, counted as rejected.acl).
 */
import { checkPattern, covers, matches } from '../subjects.ts';
import { InvalidOptionError } from '../../core/errors.ts';

export interface PermissionList {
  allow?: string[];
  deny?: string[];
}

export interface Permissions {
  publish?: PermissionList;
  subscribe?: PermissionList;
}

export function checkPermissions(option: string, p: unknown): Permissions {
  if (p === undefined) return {};
  if (typeof p !== 'object' || p === null) throw new InvalidOptionError(option, 'an object { publish?, subscribe? }', p);
  for (const dir of ['publish', 'subscribe'] as const) {
    const list = (p as Permissions)[dir];
    if (list === undefined) continue;
    for (const kind of ['allow', 'deny'] as const) {
      const v = list[kind];
      if (v === undefined) continue;
      if (!Array.isArray(v)) throw new InvalidOptionError(`${option}.${dir}.${kind}`, 'an array of patterns', v);
      for (const pat of v) {
        try {
          checkPattern(pat);
        } catch {
          throw new InvalidOptionError(`${option}.${dir}.${kind}`, 'topics or patterns (* and >)', pat);
        }
      }
    }
  }
  return p as Permissions;
}

export function mayPublish(p: Permissions | undefined, topic: string): boolean {
  const l = p?.publish;
  if (l === undefined) return true;
  if (l.deny?.some((d) => matches(d, topic))) return false;
  return l.allow === undefined || l.allow.some((a) => matches(a, topic));
}

export function maySubscribe(p: Permissions | undefined, pattern: string): boolean {
  const l = p?.subscribe;
  if (l === undefined) return true;
  if (l.deny?.some((d) => covers(d, pattern))) return false;
  return l.allow === undefined || l.allow.some((a) => covers(a, pattern));
}

/** Whether a message on `topic` may reach a subscriber with these permissions (the partial-deny filter above). */
export function mayReceive(p: Permissions | undefined, topic: string): boolean {
  const deny = p?.subscribe?.deny;
  return deny === undefined || !deny.some((d) => matches(d, topic));
}
