import { InvalidOptionError } from '../../core/options.ts';

export type SmtpChaosTrigger = 'sender' | 'recipient' | 'auth' | 'data';

/** An injected failure (Mailpit / MailHog style): with `probability`, the trigger is answered with `code`. */
export interface SmtpChaosRule {
  /** A 4xx (transient: the sender should retry later) or 5xx (permanent: the sender should bounce) reply code. */
  code: number;
  /** 0 to 1. */
  probability: number;
  /** Inject at most this many times, then stop (a lab's deterministic "fail twice, then accept"). Default no limit. */
  times?: number;
}

export interface SmtpChaos {
  sender?: SmtpChaosRule;
  recipient?: SmtpChaosRule;
  auth?: SmtpChaosRule;
  data?: SmtpChaosRule;
  /** On any trigger: drop the connection, after a 421 reply or (`abrupt`) with no reply at all. */
  disconnect?: { probability: number; times?: number; abrupt?: boolean };
}

export const CHAOS_TRIGGERS: readonly SmtpChaosTrigger[] = ['sender', 'recipient', 'auth', 'data'];

function checkRule(name: string, r: { probability: number; times?: number; code?: number }, needsCode: boolean): void {
  if (typeof r.probability !== 'number' || !(r.probability >= 0 && r.probability <= 1)) throw new InvalidOptionError(`chaos.${name}.probability`, 'a number in [0, 1]', r.probability);
  if (r.times !== undefined && !(Number.isInteger(r.times) && r.times >= 0)) throw new InvalidOptionError(`chaos.${name}.times`, 'a non-negative integer', r.times);
  if (needsCode && !(Number.isInteger(r.code) && r.code! >= 400 && r.code! <= 599)) throw new InvalidOptionError(`chaos.${name}.code`, 'an SMTP reply code from 400 to 599', r.code);
}

/** The chaos settings in force, with how many times each rule fired; replaced whole by `set`. */
export class ChaosPolicy {
  #chaos: SmtpChaos = {};
  #fired = new Map<string, number>();

  constructor(
    chaos: SmtpChaos = {},
    readonly random: () => number = Math.random,
  ) {
    this.set(chaos);
  }

  set(chaos: SmtpChaos): void {
    // From a config file or the control API the rules are user JSON: a non-object or a misspelt trigger is refused, not ignored.
    if (typeof chaos !== 'object' || chaos === null || Array.isArray(chaos)) throw new InvalidOptionError('chaos', 'an object of rules by trigger', chaos);
    for (const k of Object.keys(chaos)) {
      if (k !== 'disconnect' && !(CHAOS_TRIGGERS as readonly string[]).includes(k)) throw new InvalidOptionError(`chaos.${k}`, `one of ${[...CHAOS_TRIGGERS, 'disconnect'].join(', ')}`, k);
    }
    for (const t of CHAOS_TRIGGERS) if (chaos[t]) checkRule(t, chaos[t]!, true);
    if (chaos.disconnect) checkRule('disconnect', chaos.disconnect, false);
    this.#chaos = { ...chaos };
    this.#fired.clear();
  }

  #fires(name: string, r: { probability: number; times?: number } | undefined): boolean {
    if (!r) return false;
    const n = this.#fired.get(name) ?? 0;
    if (r.times !== undefined && n >= r.times) return false;
    if (!(r.probability > this.random())) return false;
    this.#fired.set(name, n + 1);
    return true;
  }

  /** What to inject at this trigger: a reply code (421 for a disconnect, `abrupt` for none), or null. */
  check(trigger: SmtpChaosTrigger): { code: number; abrupt: boolean } | null {
    if (this.#fires('disconnect', this.#chaos.disconnect)) return { code: 421, abrupt: this.#chaos.disconnect?.abrupt === true };
    const rule = this.#chaos[trigger];
    return this.#fires(trigger, rule) ? { code: rule!.code, abrupt: false } : null;
  }
}
