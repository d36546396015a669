import type { ImapCommand, ImapToken } from '../parser.ts';
import type { ImapSession, ImapState } from '../session.ts';

export interface CommandContext {
  session: ImapSession;
  cmd: ImapCommand;
}

export interface CommandHandler {
  /** The states the command is valid in (RFC 3501 6); elsewhere it gets BAD. */
  states: ImapState[];
  run(ctx: CommandContext): Promise<void> | void;
}

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
