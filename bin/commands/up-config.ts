// `wirelab up --config wirelab.json` and `--set SERVICE.OPTION=VALUE` (issue 17): server options (chaos, limits, FTP's
// passive range, requireTls...) for the services `wirelab up` starts. Each option is handed to the server's own
// start function, which checks it (a TypeError naming it); the names are checked here first, so a typo is an error
// rather than an option silently ignored.
import { readFile } from 'node:fs/promises';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';

const LINE = ['maxConnections', 'maxConnectionsPerAddress', 'idleTimeoutMs', 'maxLineLength', 'maxUnknownCommands', 'maxPipelinedCommands', 'authFailureDelayMs', 'maxAuthFailures', 'allowInsecureAuth', 'chaos'];
const FTP = [...LINE, 'requireTls', 'pasvPortMin', 'pasvPortMax', 'quotaBytes', 'anonymous', 'dataTimeoutMs', 'dataIdleTimeoutMs', 'maxListEntries'];
const IMAP = [...LINE, 'maxLiteralSize', 'maxCommandSize', 'maxNesting', 'maxSearchDepth'];
const SMTP = ['maxConnections', 'maxConnectionsPerAddress', 'idleTimeoutMs', 'maxLineLength', 'authFailureDelayMs', 'maxAuthFailures', 'allowInsecureAuth', 'chaos', 'maxMessageSize', 'maxRecipients', 'requireAuth'];

/** The options each configurable service takes from --config / --set (the rest keep their defaults). */
export const CONFIGURABLE: Readonly<Record<string, readonly string[]>> = {
  ftp: FTP,
  ftps: FTP,
  smtp: SMTP,
  smtps: SMTP,
  submission: SMTP,
  imap: IMAP,
  imaps: IMAP,
  pop3: LINE,
  pop3s: LINE,
  // The chat app (apps/chat/server/options.ts): accounts and a few limits.
  chat: ['users', 'allowGuests', 'allowInsecureAuth', 'maxAuthFailures', 'presenceLeaseMs', 'maxConnections', 'maxMessageChars', 'ratePerSecond', 'rateBurst', 'historyOnJoin', 'dmIceTimeoutMs', 'dmRetryMs', 'dmRetries'],
};

export type UpConfig = Record<string, Record<string, unknown>>;

function usage(message: string): WirelabError {
  return new WirelabError(ErrorCodes.USAGE, message);
}

function checkService(name: string, opts: unknown, where: string): Record<string, unknown> {
  const allowed = CONFIGURABLE[name];
  if (!allowed) throw usage(`${where}: service ${JSON.stringify(name)} takes no options here; configurable: ${Object.keys(CONFIGURABLE).join(', ')}`);
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw usage(`${where}: ${name} must be an object of options`);
  for (const key of Object.keys(opts)) {
    if (!allowed.includes(key)) throw usage(`${where}: ${name} has no option ${JSON.stringify(key)}; its options: ${allowed.join(', ')}`);
  }
  return { ...(opts as Record<string, unknown>) };
}

/** A value as typed after `=`: JSON when it parses (numbers, true, objects), the text otherwise. */
function valueOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The options per service: the config file's `{ "servers": { "ftp": { ... } } }`, then each `--set ftp.pasvPortMin=30000`
 * over it. Throws WL_ERR_USAGE naming the file, the service or the option.
 */
export async function loadUpConfig(file: string | undefined, sets: readonly string[] = []): Promise<UpConfig> {
  const config: UpConfig = {};
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw usage(`--config ${file}: ${(err as Error).message}`);
    }
    const servers = (parsed as { servers?: unknown })?.servers;
    if (typeof parsed !== 'object' || parsed === null || Object.keys(parsed).some((k) => k !== 'servers')) throw usage(`--config ${file}: expected { "servers": { "<service>": { <option>: <value> } } }`);
    if (servers !== undefined && (typeof servers !== 'object' || servers === null)) throw usage(`--config ${file}: "servers" must be an object`);
    for (const [name, opts] of Object.entries((servers ?? {}) as Record<string, unknown>)) config[name] = checkService(name, opts, `--config ${file}`);
  }
  for (const s of sets) {
    const m = /^([a-z0-9-]+)\.([A-Za-z]+)=(.*)$/s.exec(s);
    if (!m) throw usage(`--set ${s}: expected SERVICE.OPTION=VALUE (e.g. --set ftp.pasvPortMin=30000)`);
    const [, name, key, text] = m;
    config[name!] = checkService(name!, { ...config[name!], [key!]: valueOf(text!) }, `--set ${s}`);
  }
  return config;
}

/** A running server whose chaos rules can be read and replaced (IMAP, POP3, FTP, SMTP). */
export interface ChaosControl {
  chaos?: unknown;
  setChaos(chaos: unknown): void;
}

export function chaosControl(server: object): ChaosControl | undefined {
  return typeof (server as { setChaos?: unknown }).setChaos === 'function' ? (server as ChaosControl) : undefined;
}
