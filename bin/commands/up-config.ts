// `wirelab up --config wirelab.json` and `--set SERVICE.OPTION=VALUE` (issue 17): server options (chaos, limits, FTP's
// passive range, requireTls, HTTP's allowTrace, the pub/sub doors' and the chat's limits...) for every service
// `wirelab up` starts. Each option is handed to the server's own start function, which checks it (a TypeError naming
// it); the names are checked here first, so a typo is an error rather than an option silently ignored.
import { readFile } from 'node:fs/promises';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { TCP_SERVER_DEFAULTS } from '../../servers/tcp/index.ts';
import { HTTP_SERVER_DEFAULTS } from '../../servers/http/options.ts';
import { WS_SERVER_DEFAULTS } from '../../servers/ws/index.ts';
import { FTP_SERVER_DEFAULTS } from '../../servers/ftp/options.ts';
import { IMAP_SERVER_DEFAULTS } from '../../servers/imap/index.ts';
import { POP3_SERVER_DEFAULTS } from '../../servers/pop3/index.ts';
import { SMTP_SERVER_DEFAULTS } from '../../servers/smtp/index.ts';
import { SIGNALING_DEFAULTS } from '../../servers/webrtc/signaling.ts';
import { NATIVE_LIMIT_DEFAULTS } from '../../pubsub/doors/native/connection.ts';
import { PUBSUB_HTTP_LIMITS } from '../../pubsub/doors/http/options.ts';
import { MQTT_LIMITS_DEFAULTS } from '../../pubsub/doors/mqtt/options.ts';
import { SCHEMA_REGISTRY_DEFAULTS } from '../../pubsub/schema/registry.ts';
import { CHAT_DEFAULTS } from '../../apps/chat/server/options.ts';

/** A DEFAULTS object's option names, less those `wirelab up` sets itself (host, port, and what each service entry fixes). */
const keysOf = (defaults: object, ...fixed: string[]): string[] => Object.keys(defaults).filter((k) => !['host', 'port', ...fixed].includes(k));

// The lists come from each server's own DEFAULTS, so an option added to a server is settable here at once.
const TCP = keysOf(TCP_SERVER_DEFAULTS, 'mode', 'framing');
// connectTargets and routes are wirelab up's own (the other servers, the WebRTC page); playground stays on.
const HTTP = [...keysOf(HTTP_SERVER_DEFAULTS, 'connectTargets', 'routes', 'playground'), 'headersTimeoutMs'];
const WS = keysOf(WS_SERVER_DEFAULTS, 'builtinRoutes');
// `secure` is what makes imaps / pop3s: the service entry sets it.
const IMAP = [...keysOf(IMAP_SERVER_DEFAULTS, 'secure'), 'chaos'];
const POP3 = [...keysOf(POP3_SERVER_DEFAULTS, 'secure'), 'chaos'];
// tls / implicitTls are what make ftp / ftps (the service entries set them).
const FTP = [...keysOf(FTP_SERVER_DEFAULTS, 'tls', 'implicitTls'), 'chaos'];
// `secure` makes smtps; hostname and addReceived stay as wirelab up's mail flow expects them.
const SMTP = [...keysOf(SMTP_SERVER_DEFAULTS, 'secure', 'hostname', 'addReceived'), 'chaos'];

/**
 * Where a service's options go: `top` straight into its start options, `nested` into one object of them (the
 * signaling server's `signaling`, the pub/sub doors' `limits`), so `--set mqtt.maxConnections=10` needs no nesting.
 */
export interface ServiceOptions {
  top: readonly string[];
  nested?: { into: string; keys: readonly string[] };
}

const flat = (top: readonly string[]): ServiceOptions => ({ top });
const limits = (keys: readonly string[], top: readonly string[] = []): ServiceOptions => ({ top, nested: { into: 'limits', keys } });

/** The options each service of `wirelab up` takes from --config / --set (the rest keep their defaults). */
export const SERVICE_OPTIONS: Readonly<Record<string, ServiceOptions>> = {
  'tcp-echo': flat(TCP),
  'tcp-discard': flat(TCP),
  'tcp-chargen': flat(TCP),
  'udp-echo': flat(['maxEchoPerSecond']),
  http: flat(HTTP),
  https: flat(HTTP),
  ws: flat(WS),
  wss: flat(WS),
  'webrtc-signal': { top: WS, nested: { into: 'signaling', keys: [...Object.keys(SIGNALING_DEFAULTS), 'rooms'] } },
  ftp: flat(FTP),
  ftps: flat(FTP),
  smtp: flat(SMTP),
  smtps: flat(SMTP),
  submission: flat(SMTP.filter((k) => k !== 'requireAuth')), // submission always requires AUTH
  imap: flat(IMAP),
  imaps: flat(IMAP),
  pop3: flat(POP3),
  pop3s: flat(POP3),
  'pubsub-tcp': limits(Object.keys(NATIVE_LIMIT_DEFAULTS)),
  'pubsub-ws': limits(Object.keys(NATIVE_LIMIT_DEFAULTS)),
  'pubsub-http': limits(Object.keys(PUBSUB_HTTP_LIMITS), ['http2']),
  mqtt: limits(Object.keys(MQTT_LIMITS_DEFAULTS)),
  mqtts: limits(Object.keys(MQTT_LIMITS_DEFAULTS)),
  'mqtt-ws': limits(Object.keys(MQTT_LIMITS_DEFAULTS)),
  'schema-registry': flat([...keysOf(SCHEMA_REGISTRY_DEFAULTS, 'topic'), 'maxBodyBytes']),
  // The chat app (apps/chat/server/options.ts): every limit, and its accounts (`users` has no default).
  chat: flat([...keysOf(CHAT_DEFAULTS), 'users', 'tls']),
  // The chat over TLS: a door on the chat row's server (its limits and accounts are the chat row's); its TLS versions.
  'chat-tls': { top: [], nested: { into: 'tls', keys: ['minVersion', 'maxVersion'] } },
};

/** Every option name each configurable service takes, flat. */
export const CONFIGURABLE: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  Object.entries(SERVICE_OPTIONS).map(([name, o]) => [name, [...o.top, ...(o.nested?.keys ?? [])]]),
);

/** A service's flat options as its start function takes them: the nested ones moved into their object. */
export function startOptionsOf(name: string, options: Record<string, unknown> | undefined): Record<string, unknown> {
  const spec = SERVICE_OPTIONS[name];
  if (!spec || !options) return {};
  const out: Record<string, unknown> = {};
  const inner: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (spec.top.includes(k)) out[k] = v;
    else inner[k] = v;
  }
  if (spec.nested && Object.keys(inner).length > 0) out[spec.nested.into] = inner;
  return out;
}

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
