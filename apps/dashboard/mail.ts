import { HttpError } from '../../core/errors.ts';
import { json, readBody, send, type Ctx, type Router } from '../../servers/http/index.ts';
import type { MailStore, StoredMessage } from '../../servers/mail/store/index.ts';
import { headerValue, parseMime, parseParams, type MimePart } from '../../servers/imap/mime.ts';
import { decodeCharset, decodeHeaderValue, decodeTransfer } from '../../servers/imap/decode.ts';

/**
 * The mail JSON API under /_wirelab/api/mail (Mailpit's API is the anchor: list, read, raw source, headers,
 * attachments, delete), on the store `wirelab up`'s SMTP, IMAP and POP3 servers share. A message is named by
 * user, mailbox and UID: `?user=demo&mailbox=INBOX` (those are the defaults) and the UID in the path.
 */
export interface MailApiLimits {
  /** Messages one list answer holds (newest first); `?limit=` may ask for fewer. Default 200. */
  maxList: number;
  /** Characters of a text or HTML body returned by the read view; the rest is cut (`truncated`). Default 256 KiB. */
  maxBodyChars: number;
  /** MIME parts walked in one message (nesting and count); past it the rest is not listed. Default 200. */
  maxParts: number;
}

export const MAIL_API_DEFAULTS: Readonly<MailApiLimits> = Object.freeze({ maxList: 200, maxBodyChars: 256 * 1024, maxParts: 200 });

interface Leaf {
  id: string;
  part: MimePart;
}

/** Every leaf part with its IMAP section number (1, 1.2, ...), depth-first, at most `max`. */
function leaves(root: MimePart, max: number): Leaf[] {
  const out: Leaf[] = [];
  const walk = (p: MimePart, id: string, depth: number): void => {
    if (out.length >= max || depth > 20) return;
    if (p.type === 'multipart') p.children.forEach((c, i) => walk(c, id ? `${id}.${i + 1}` : String(i + 1), depth + 1));
    else out.push({ id: id || '1', part: p });
  };
  walk(root, '', 0);
  return out;
}

function param(value: string | null, name: string): string | undefined {
  return value ? parseParams(value).params.find(([k]) => k === name.toUpperCase())?.[1] : undefined;
}

function filenameOf(p: MimePart): string | undefined {
  const raw = param(headerValue(p, 'content-disposition'), 'filename') ?? param(headerValue(p, 'content-type'), 'name');
  return raw === undefined ? undefined : decodeHeaderValue(raw);
}

function isAttachment(p: MimePart): boolean {
  const disp = (headerValue(p, 'content-disposition') ?? '').toLowerCase();
  return disp.startsWith('attachment') || (p.type !== 'text' && p.type !== 'multipart') || filenameOf(p) !== undefined;
}

const header = (root: MimePart, name: string): string => decodeHeaderValue(headerValue(root, name) ?? '');

/** One line of the list: Mailpit's message summary, named by UID. */
function summary(m: StoredMessage, user: string, mailbox: string, max: number): Record<string, unknown> {
  const root = parseMime(m.raw.toString('latin1'));
  return {
    uid: m.uid,
    user,
    mailbox,
    from: header(root, 'from'),
    to: header(root, 'to'),
    subject: header(root, 'subject'),
    date: m.internalDate.toISOString(),
    size: m.size,
    flags: [...m.flags],
    attachments: leaves(root, max).filter((l) => isAttachment(l.part)).length,
  };
}

function cut(text: string, max: number): { text: string; truncated?: true } {
  return text.length > max ? { text: text.slice(0, max), truncated: true } : { text };
}

/** The read view: headers decoded, the first text/plain and text/html bodies, the attachments listed. */
function message(m: StoredMessage, user: string, mailbox: string, limits: MailApiLimits): Record<string, unknown> {
  const root = parseMime(m.raw.toString('latin1'));
  const all = leaves(root, limits.maxParts);
  const body = (sub: string): ReturnType<typeof cut> | null => {
    const l = all.find((x) => x.part.type === 'text' && x.part.subtype === sub && !isAttachment(x.part));
    return l ? cut(decodeCharset(decodeTransfer(l.part), param(headerValue(l.part, 'content-type'), 'charset')), limits.maxBodyChars) : null;
  };
  return {
    ...summary(m, user, mailbox, limits.maxParts),
    cc: header(root, 'cc'),
    messageId: headerValue(root, 'message-id'),
    text: body('plain'),
    html: body('html'),
    attachments: all
      .filter((l) => isAttachment(l.part))
      .map((l) => ({ partId: l.id, filename: filenameOf(l.part) ?? null, contentType: `${l.part.type}/${l.part.subtype}`.toLowerCase(), size: decodeTransfer(l.part).length })),
  };
}

/** Registers the mail API on the router; `store` opens (or returns) the shared store on first use. */
export function registerMailApi(router: Router, prefix: string, store: () => Promise<MailStore>, limits: MailApiLimits = MAIL_API_DEFAULTS): void {
  const where = async (ctx: Ctx): Promise<{ s: MailStore; user: string; mailbox: string }> => {
    const s = await store();
    const q = ctx.url.searchParams;
    const user = s.canonicalUser(q.get('user') ?? 'demo');
    if (!user) throw new HttpError(404, `no user ${q.get('user')}`);
    const mailbox = q.get('mailbox') ?? 'INBOX';
    if (!s.mailbox(user, mailbox)) throw new HttpError(404, `no mailbox ${mailbox} for ${user}`);
    return { s, user, mailbox };
  };
  const one = async (ctx: Ctx): Promise<{ s: MailStore; user: string; mailbox: string; m: StoredMessage }> => {
    const w = await where(ctx);
    const raw = ctx.params[0] ?? '';
    const uid = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(uid)) throw new HttpError(400, `a message is named by its UID (a number), got ${JSON.stringify(raw)}`);
    const m = w.s.mailbox(w.user, w.mailbox)!.messages.find((x) => x.uid === uid);
    if (!m) throw new HttpError(404, `no message ${uid} in ${w.user}/${w.mailbox}`);
    return { ...w, m };
  };

  router.add('GET', `${prefix}/mailboxes`, async (ctx) => {
    const s = await store();
    json(ctx, 200, { users: s.userNames().map((u) => ({ user: u, address: s.addressOf(u), mailboxes: s.listMailboxes(u).map((name) => ({ name, messages: s.mailbox(u, name)?.messages.length ?? 0 })) })) });
  });
  router.add('GET', `${prefix}/messages`, async (ctx) => {
    const { s, user, mailbox } = await where(ctx);
    const asked = Number(ctx.url.searchParams.get('limit') ?? limits.maxList);
    const limit = Number.isInteger(asked) && asked > 0 ? Math.min(asked, limits.maxList) : limits.maxList;
    const msgs = s.mailbox(user, mailbox)!.messages;
    const newest = msgs.slice(-limit).reverse();
    json(ctx, 200, { user, mailbox, total: msgs.length, count: newest.length, messages: newest.map((m) => summary(m, user, mailbox, limits.maxParts)) });
  });
  router.add('GET', `${prefix}/message/:uid`, async (ctx) => {
    const { user, mailbox, m } = await one(ctx);
    json(ctx, 200, message(m, user, mailbox, limits));
  });
  router.add('GET', `${prefix}/message/:uid/raw`, async (ctx) => {
    const { m } = await one(ctx);
    send(ctx, 200, m.raw, { 'content-type': 'message/rfc822' });
  });
  router.add('GET', `${prefix}/message/:uid/headers`, async (ctx) => {
    const { m } = await one(ctx);
    const headers: Record<string, string[]> = {};
    for (const [k, v] of parseMime(m.raw.toString('latin1')).headers) (headers[k] ??= []).push(decodeHeaderValue(v));
    json(ctx, 200, headers);
  });
  router.add('GET', `${prefix}/message/:uid/part/:part`, async (ctx) => {
    const { m } = await one(ctx);
    const id = ctx.params[1] ?? '';
    const leaf = leaves(parseMime(m.raw.toString('latin1')), limits.maxParts).find((l) => l.id === id);
    if (!leaf) throw new HttpError(404, `no part ${id} in message ${m.uid}`);
    const name = filenameOf(leaf.part);
    send(ctx, 200, decodeTransfer(leaf.part), {
      'content-type': `${leaf.part.type}/${leaf.part.subtype}`.toLowerCase(),
      // Never rendered inline from the dashboard's origin: a mail's HTML or SVG is someone else's content.
      'content-disposition': `attachment${name ? `; filename*=UTF-8''${encodeURIComponent(name)}` : ''}`,
      'x-content-type-options': 'nosniff',
    });
  });
  router.add('DELETE', `${prefix}/message/:uid`, async (ctx) => {
    const { s, user, mailbox, m } = await one(ctx);
    await s.remove(user, mailbox, [m.uid]);
    send(ctx, 204, '');
  });
  // Mailpit's DELETE /messages: {"uids": [...]} deletes those, no body deletes every message of the mailbox.
  router.add('DELETE', `${prefix}/messages`, async (ctx) => {
    const { s, user, mailbox } = await where(ctx);
    const body = (await readBody(ctx)).toString('utf8').trim();
    let uids = s.mailbox(user, mailbox)!.messages.map((m) => m.uid);
    if (body) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new HttpError(400, 'the body must be empty (delete all) or JSON {"uids": [n, ...]}');
      }
      const list = (parsed as { uids?: unknown } | null)?.uids;
      if (!Array.isArray(list) || list.length > 100_000 || list.some((n) => !Number.isInteger(n) || n < 0)) throw new HttpError(400, 'uids must be an array of UIDs');
      uids = list as number[];
    }
    const removed = await s.remove(user, mailbox, uids);
    json(ctx, 200, { user, mailbox, deleted: removed });
  });
}
