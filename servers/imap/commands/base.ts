import { decodeMailboxName } from '../mutf7.ts';
import type { ImapToken } from '../parser.ts';
import type { CommandContext, ImapState } from '../session.ts';

export type { CommandContext, CommandHandler } from '../session.ts';

export const ANY: ImapState[] = ['not-authenticated', 'authenticated', 'selected'];
export const AUTHED: ImapState[] = ['authenticated', 'selected'];
export const SELECTED: ImapState[] = ['selected'];

/** Answers BAD and returns false when the argument count is outside [min, max]. */
export function arity(ctx: CommandContext, min: number, max = min): boolean {
  const n = ctx.cmd.args.length;
  if (n >= min && n <= max) return true;
  ctx.session.tagged(ctx.cmd.tag, 'BAD', `${ctx.cmd.name} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${n}`);
  return false;
}

export function atomOf(t: ImapToken | undefined): string | null {
  return t?.type === 'atom' ? t.value : null;
}

/**
 * A mailbox name (or LIST pattern) argument, decoded from modified UTF-7 to the store's Unicode name. Raw 8-bit bytes
 * and malformed modified UTF-7 get BAD (RFC 3501 5.1.3; there is no UTF8=ACCEPT here), as does a missing argument:
 * the command is answered and null returned.
 */
export function mailboxArg(ctx: CommandContext, t: ImapToken | undefined, usage: string): string | null {
  const { session, cmd } = ctx;
  const wire = t?.type === 'atom' ? t.value : t?.type === 'string' ? t.value.toString('latin1') : null;
  if (wire === null) {
    session.tagged(cmd.tag, 'BAD', usage);
    return null;
  }
  const name = decodeMailboxName(wire);
  if (name === null) {
    const why = /[\x80-\xff]/.test(wire) ? 'raw 8-bit bytes in a mailbox name' : 'malformed modified UTF-7 in a mailbox name';
    session.o.tracer.emit(session.o.proto, session.cid, '*', 'bad-mailbox-name', () => `${cmd.name}: ${why}`);
    session.tagged(cmd.tag, 'BAD', `${why}: IMAP4rev1 names are modified UTF-7 (RFC 3501 5.1.3)`);
    return null;
  }
  return name;
}
