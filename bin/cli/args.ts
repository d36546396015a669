// The command line: which command, which flags. Node's parseArgs is not used because its errors are several lines of
// advice about "--" and it cannot say "this flag exists, but not for this command"; the grammar here is small.
import { ErrorCodes, WirelabError } from '../../core/errors.ts';

export interface FlagSpec {
  /** 'boolean' takes no value; 'string' takes the next argument (or `--flag=value`). */
  type: 'boolean' | 'string';
  /** May be given several times (the values are collected in order). */
  multiple?: boolean;
  /** A one-letter alias (`-h`). */
  short?: string;
  /** The value's name in help (`N`, `SPEC`...). */
  value?: string;
  /** One line of help. */
  help: string;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandSpec {
  name: string;
  /** `<id | ./my-lab.ts>` and the like, shown in the usage line. */
  args: string;
  /** Positional arguments after the command: at least / at most. */
  minArgs: number;
  maxArgs: number;
  /** One line, for the command list. */
  summary: string;
  /** A paragraph or two, for `wirelab <command> --help`. */
  details: string;
  /** The flag names this command takes (keys of FLAGS). */
  flags: string[];
}

export interface ParsedArgs {
  command?: string;
  positionals: string[];
  values: FlagValues;
}

/** A command line the CLI cannot run: one line naming the flag or command (WL_ERR_USAGE). */
export class UsageError extends WirelabError {
  constructor(message: string, readonly command?: string) {
    super(ErrorCodes.USAGE, message);
    this.name = 'UsageError';
  }
}

/**
 * Splits argv into the command, its positionals and its flags. Flags may come before or after the command; a flag
 * that no command knows, a flag this command does not take, a missing value and a value given to a switch are each
 * a UsageError with one line naming the flag.
 */
export function parseCommandLine(argv: string[], flags: Record<string, FlagSpec>, commands: Record<string, CommandSpec>): ParsedArgs {
  const byShort = new Map(Object.entries(flags).flatMap(([name, f]) => (f.short ? [[f.short, name] as const] : [])));
  const positionals: string[] = [];
  const given: Array<{ name: string; token: string }> = [];
  const values: FlagValues = {};
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      name = token.slice(2, eq === -1 ? undefined : eq);
      if (eq !== -1) inline = token.slice(eq + 1);
    } else if (token.length === 2) {
      name = byShort.get(token[1]!);
    }
    const spec = name === undefined ? undefined : flags[name];
    if (name === undefined || spec === undefined) throw new UsageError(`unknown flag ${token.split('=')[0]}`, positionals[0]);
    let value: string | boolean;
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value (got --${name}=${inline})`, positionals[0]);
      value = true;
    } else if (inline !== undefined) {
      value = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`--${name} needs a value (${spec.value ?? 'VALUE'})`, positionals[0]);
      value = next;
      i++;
    }
    given.push({ name, token });
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), value as string];
    else values[name] = value;
  }
  const [command, ...rest] = positionals;
  const spec = command === undefined ? undefined : commands[command];
  if (spec) {
    for (const g of given) {
      if (g.name !== 'help' && !spec.flags.includes(g.name)) {
        throw new UsageError(`--${g.name} does not apply to "${command}" (its flags: ${spec.flags.map((f) => `--${f}`).join(' ') || 'none'})`, command);
      }
    }
  }
  return { ...(command === undefined ? {} : { command }), positionals: rest, values };
}
