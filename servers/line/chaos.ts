// Protocol chaos for the command-line servers (IMAP, POP3, FTP; issue 17), in the style of SMTP's triggers
// (servers/mail/chaos.ts) and of Mailpit's / MailHog's Jim: at a chosen command, with a probability and a seed, the
// server answers with a failure reply instead of running the command, or drops the connection (after its closing
// reply, or abruptly with none). The rules are plain JSON, so `wirelab up --config` and the control API can set them.
import { InvalidOptionError } from '../../core/options.ts';
import { Prng } from '../../core/impair/prng.ts';

export type ChaosAction = 'reply' | 'disconnect' | 'abrupt';

export interface CommandChaosRule {
  /** The command it fires on (IMAP's command name, POP3's or FTP's verb), any case; `*` for every command. */
  command: string;
  /**
   * `reply` (default): answer with `code` instead of running the command; `disconnect`: the protocol's closing reply
   * (IMAP `* BYE`, POP3 `-ERR`, FTP 421), then close; `abrupt`: close with no reply at all.
   */
  action?: ChaosAction;
  /** For `reply`: FTP a code from 400 to 599; IMAP `NO` or `BAD`; POP3 `-ERR`. Default FTP 451, IMAP NO, POP3 -ERR. */
  code?: number | string;
  /** The reply's text. Default "chaos: injected failure" (POP3 adds [SYS/TEMP] unless the text has a response code). */
  text?: string;
  /** 0 to 1. Default 1. */
  probability?: number;
  /** Inject at most this many times, then stop. Default no limit. */
  times?: number;
}

export interface CommandChaos {
  rules?: CommandChaosRule[];
  /** Seeds the draws, so a run replays exactly. Default: Math.random. */
  seed?: number;
}

/** What a session does instead of running the command. */
export interface ChaosHit {
  action: ChaosAction;
  code: number | string;
  text: string;
  /** The rule's index, for the trace. */
  rule: number;
}

/** Each protocol's reply codes for `reply`, and its default. */
export interface ChaosCodes {
  proto: string;
  defaultCode: number | string;
  valid(code: unknown): boolean;
  describe: string;
}

export const MAX_CHAOS_RULES = 64;

function checkChaos(chaos: unknown, codes: ChaosCodes): CommandChaos {
  if (typeof chaos !== 'object' || chaos === null || Array.isArray(chaos)) throw new InvalidOptionError('chaos', 'an object { rules, seed }', chaos);
  const c = chaos as CommandChaos;
  if (c.seed !== undefined && !(Number.isInteger(c.seed) && c.seed >= 0 && c.seed <= 0xffffffff)) throw new InvalidOptionError('chaos.seed', 'an integer from 0 to 2^32-1', c.seed);
  const rules = c.rules ?? [];
  if (!Array.isArray(rules) || rules.length > MAX_CHAOS_RULES) throw new InvalidOptionError('chaos.rules', `an array of at most ${MAX_CHAOS_RULES} rules`, rules);
  rules.forEach((r, i) => {
    const at = `chaos.rules[${i}]`;
    if (typeof r !== 'object' || r === null) throw new InvalidOptionError(at, 'an object { command, action, code, probability, times }', r);
    if (typeof r.command !== 'string' || !/^(\*|[A-Za-z][A-Za-z0-9-]{0,31})$/.test(r.command)) throw new InvalidOptionError(`${at}.command`, 'a command name or *', r.command);
    if (r.action !== undefined && !['reply', 'disconnect', 'abrupt'].includes(r.action)) throw new InvalidOptionError(`${at}.action`, 'reply, disconnect or abrupt', r.action);
    if (r.code !== undefined && !codes.valid(r.code)) throw new InvalidOptionError(`${at}.code`, codes.describe, r.code);
    if (r.text !== undefined && (typeof r.text !== 'string' || r.text.length > 200 || /[\r\n]/.test(r.text))) throw new InvalidOptionError(`${at}.text`, 'one line of at most 200 characters', r.text);
    if (r.probability !== undefined && !(typeof r.probability === 'number' && r.probability >= 0 && r.probability <= 1)) throw new InvalidOptionError(`${at}.probability`, 'a number in [0, 1]', r.probability);
    if (r.times !== undefined && !(Number.isInteger(r.times) && r.times >= 0)) throw new InvalidOptionError(`${at}.times`, 'a non-negative integer', r.times);
  });
  return { rules: rules.map((r) => ({ ...r })), ...(c.seed === undefined ? {} : { seed: c.seed }) };
}

/** The chaos rules in force for one server, with how many times each fired; replaced whole by `set`. */
export class CommandChaosPolicy {
  #chaos: CommandChaos = {};
  #fired: number[] = [];
  #random: () => number;
  /** Failures injected since the server started (all rules, all settings). */
  injected = 0;

  constructor(
    readonly codes: ChaosCodes,
    chaos: CommandChaos = {},
    readonly fallbackRandom: () => number = Math.random,
  ) {
    this.#random = fallbackRandom;
    this.set(chaos);
  }

  /** Checks and installs new rules (a TypeError naming the bad field leaves the old ones in force). */
  set(chaos: CommandChaos): void {
    const next = checkChaos(chaos, this.codes);
    this.#chaos = next;
    this.#fired = (next.rules ?? []).map(() => 0);
    if (next.seed !== undefined) {
      const prng = new Prng(next.seed);
      this.#random = () => prng.next();
    } else this.#random = this.fallbackRandom;
  }

  /** The rules in force (JSON for the control API). */
  toJSON(): CommandChaos & { fired: number[]; injected: number } {
    return { ...this.#chaos, rules: (this.#chaos.rules ?? []).map((r) => ({ ...r })), fired: [...this.#fired], injected: this.injected };
  }

  /** What to do instead of running `command`, or null to run it. The first rule that matches and fires wins. */
  check(command: string): ChaosHit | null {
    const rules = this.#chaos.rules;
    if (!rules || rules.length === 0) return null;
    const name = command.toUpperCase();
    for (const [i, r] of rules.entries()) {
      if (r.command !== '*' && r.command.toUpperCase() !== name) continue;
      if (r.times !== undefined && this.#fired[i]! >= r.times) continue;
      const p = r.probability ?? 1;
      if (!(p > this.#random())) continue;
      this.#fired[i]!++;
      this.injected++;
      return { action: r.action ?? 'reply', code: r.code ?? this.codes.defaultCode, text: r.text ?? 'chaos: injected failure', rule: i };
    }
    return null;
  }
}

/** How a hit reads in a trace event. */
export function describeHit(command: string, hit: ChaosHit): string {
  const what = hit.action === 'abrupt' ? 'abrupt disconnect (no reply)' : hit.action === 'disconnect' ? 'disconnect' : `reply ${hit.code}`;
  return `${command.toUpperCase()}: injected ${what} (rule ${hit.rule})`;
}

export const FTP_CHAOS_CODES: ChaosCodes = {
  proto: 'ftp',
  defaultCode: 451,
  valid: (c) => Number.isInteger(c) && (c as number) >= 400 && (c as number) <= 599,
  describe: 'an FTP reply code from 400 to 599',
};
export const IMAP_CHAOS_CODES: ChaosCodes = { proto: 'imap', defaultCode: 'NO', valid: (c) => c === 'NO' || c === 'BAD', describe: 'NO or BAD' };
export const POP3_CHAOS_CODES: ChaosCodes = { proto: 'pop3', defaultCode: '-ERR', valid: (c) => c === '-ERR', describe: '-ERR' };
