/**
 * Secrets are removed where an event is made, never later: these helpers turn a command line into its traced form.
 * A protocol with multi-line authentication (SASL continuations) also marks the following lines secret itself.
 */
export const REDACTED = '****';

const RULES: Array<[RegExp, string]> = [
  // FTP and POP3: PASS secret
  [/^(PASS)(\s+).*$/i, `$1$2${REDACTED}`],
  // POP3 APOP user digest
  [/^(APOP\s+\S+)(\s+).*$/i, `$1$2${REDACTED}`],
  // SMTP / POP3 AUTH mechanism initial-response
  [/^(AUTH\s+\S+)(\s+).+$/i, `$1$2${REDACTED}`],
  // IMAP: tag LOGIN user password  /  tag AUTHENTICATE mech initial-response
  [/^(\S+\s+LOGIN\s+(?:"(?:[^"\\]|\\.)*"|\S+))(\s+).*$/i, `$1$2${REDACTED}`],
  [/^(\S+\s+AUTHENTICATE\s+\S+)(\s+).+$/i, `$1$2${REDACTED}`],
  // HTTP headers that carry credentials
  [/^((?:proxy-)?authorization|cookie|set-cookie)(\s*:\s*).*$/i, `$1$2${REDACTED}`],
];

/** Every rule above needs one of these words: a line without any (nearly every line) is let through after one scan. */
const MAYBE_SECRET = /pass|apop|auth|login|cookie/i;

/** The line as it may appear in a trace. */
export function redactLine(line: string): string {
  if (!MAYBE_SECRET.test(line)) return line;
  for (const [re, replacement] of RULES) {
    if (re.test(line)) return line.replace(re, replacement);
  }
  return line;
}
