import type { CommandSpec, FlagSpec } from './args.ts';

/** Every flag of every command; each command lists the ones it takes. */
export const FLAGS: Record<string, FlagSpec> = {
  help: { type: 'boolean', short: 'h', help: "this command's help" },
  version: { type: 'boolean', short: 'V', help: "wirelab's version" },
  json: { type: 'boolean', help: 'machine-readable output on stdout, nothing else there' },
  trace: { type: 'boolean', help: 'every connection, read, write, command, frame and datagram on stderr' },
  hex: { type: 'boolean', help: 'a hex dump of each payload under its traced line (implies --trace)' },
  'trace-file': { type: 'string', value: 'F', help: 'the same events as JSON lines in the file F' },
  'trace-lean': { type: 'boolean', help: 'with --trace-file: summaries only (no wire bytes, header lists or HAR exchanges): far cheaper, but the file cannot become a pcapng' },
  'trace-libs': { type: 'boolean', help: "with tracing: the mail and FTP libraries' own debug lines too (nodemailer, imapflow, basic-ftp, smtp-server)" },
  pcap: { type: 'string', value: 'F', help: 'write the traffic as a pcapng file F for Wireshark / tshark (synthesized headers; labs: a dir/ for one file per lab)' },
  'pcap-real': { type: 'boolean', help: 'with --pcap: the real packets, captured by tcpdump on lo (root only; otherwise the synthesized file, saying why)' },
  // wirelab trace
  proto: { type: 'string', value: 'a,b', help: 'trace show: only these protocols (smtp,tls); perf client: tcp (default), udp, ws, http or webrtc' },
  cid: { type: 'string', value: 'ID', help: "trace show: only this connection (smtp#3) and its other end's events" },
  grep: { type: 'string', value: 'RE', help: 'trace show: only events whose summary matches RE (case-insensitive)' },
  to: { type: 'string', value: 'FORMAT', help: 'trace convert: the output format (pcapng)' },
  output: { type: 'string', short: 'o', value: 'F', help: 'trace convert: the file to write' },
  'port-base': { type: 'string', value: 'N', help: 'each server on N + its IANA port (default 7000: tcp echo 7007); 0 picks free ports' },
  host: { type: 'string', value: 'H', help: 'bind H instead of 127.0.0.1 (only when you mean it)' },
  only: { type: 'string', value: 'a,b', help: 'start only these services (names or protocols: tcp-echo,udp)' },
  impair: {
    type: 'string',
    multiple: true,
    value: 'SPEC',
    help: "put servers behind impairments, e.g. 'tcp-echo:latency=20ms,jitter=5ms' or 'udp:loss=5%' (README \"Impairments\"); repeatable",
  },
  engine: { type: 'string', value: 'E', help: "the pub/sub engine: embedded (default) or jetstream (a local 3-node nats-server cluster unless --nats-url)" },
  'nats-url': { type: 'string', value: 'URL', help: 'with --engine jetstream: use this NATS cluster (nats://HOST:PORT[,...]) and start none' },
  'on-unavailable': { type: 'string', value: 'W', help: "with --engine jetstream, when the cluster cannot take a publish: wait (default: retried up to 15 s, then an error) or error (at once)" },
  url: {
    type: 'string',
    value: 'URL',
    help: "the server: webrtc ws://HOST:PORT/signal; chat ws://HOST:PORT/ws (wss:// or https:// for TLS); pub, sub tcp://HOST:PORT or ws://HOST:PORT/pubsub; lineage http://HOST:PORT; impair the control API http://HOST:PORT (default: wirelab up's, from --port-base)",
  },
  room: { type: 'string', value: 'NAME', help: 'the room to join (webrtc: default demo, as the browser page; chat: default lobby)' },
  name: { type: 'string', value: 'NAME', help: 'chat: your name in the room (default $USER)' },
  label: { type: 'string', value: 'L', help: 'the data channel stdin lines go to (default chat); a caller makes it, an answerer needs a caller that does' },
  'timeout-ms': { type: 'string', value: 'MS', help: 'give up joining or connecting a peer after MS (default 10000)' },
  transport: { type: 'string', value: 'ws|sse|poll', help: 'chat: WebSocket (default), SSE + POST or long polling (/transport switches live)' },
  'no-webrtc': { type: 'boolean', help: 'chat: DMs through the server only (no WebRTC data channel; offers are declined)' },
  'password-file': { type: 'string', value: 'F', help: "chat: a registered name's password, the first line of F (or $WIRELAB_PASSWORD)" },
  'allow-insecure-auth': { type: 'boolean', help: 'chat: send the password or token over ws:// (no TLS); the server must allow it too' },
  ca: { type: 'string', value: 'FILE', help: "chat over wss:// / https://: trust the CA certificate(s) in FILE (PEM; default wirelab's local CA, <data dir>/tls/ca.pem)" },
  // wirelab pub / sub (the native pub/sub client)
  user: { type: 'string', value: 'NAME', help: 'log in as NAME (the password from --password or $WIRELAB_PASSWORD)' },
  password: { type: 'string', value: 'P', help: "NAME's password (visible in ps: prefer $WIRELAB_PASSWORD)" },
  token: { type: 'string', value: 'T', help: 'log in with a token instead of a user' },
  key: { type: 'string', value: 'K', help: 'the message key: hashed to a partition (order kept per key)' },
  acks: { type: 'string', value: '0|1|all', help: "the ack to wait for: 0 none, 1 written, all fsync'd (default: the broker's)" },
  'msg-id': { type: 'string', value: 'ID', help: 'a message id: the broker stores a repeat within its window once' },
  header: { type: 'string', multiple: true, value: 'k=v', help: 'a message header; repeatable' },
  group: { type: 'string', value: 'G', help: 'join consumer group G (each message to one member; durable)' },
  mode: { type: 'string', value: 'queue|partitioned', help: "the group's mode: queue (competing consumers, default) or partitioned (Kafka's)" },
  ack: { type: 'string', value: 'manual|none', help: 'manual: each message acked once printed (at-least-once, default); none: at-most-once' },
  from: { type: 'string', value: 'WHERE', help: 'earliest, new (default), an offset, or an ISO time (2026-01-31T12:00:00Z)' },
  count: { type: 'string', value: 'N', help: 'exit after N messages' },
  // Inspection exports (issue 16): README "Inspecting traffic"
  har: { type: 'string', value: 'F', help: 'every HTTP exchange, client and server side, as HAR 1.2 in F (Chrome DevTools: Network, Import HAR)' },
  diagram: { type: 'string', value: 'F', help: "the lab's trace as a Mermaid sequence diagram in F (F.svg: the same drawn by wirelab)" },
  report: { type: 'string', value: 'F', help: 'an HTML report (findings, plots, the sequence diagram) in F; labs: a folder with index.html' },
  config: { type: 'string', value: 'FILE', help: 'server options from a JSON file: { "servers": { "ftp": { "pasvPortMin": 30000, "chaos": {...} } } } (README "Protocol chaos")' },
  set: { type: 'string', multiple: true, value: 'S.O=V', help: 'one server option, over --config: ftp.requireTls=true, pop3.maxConnections=5; repeatable' },
  // wirelab perf (iperf3's letters)
  port: { type: 'string', short: 'p', value: 'PORT', help: 'perf: the server port (default 5201, as iperf3); HTTP, WebSocket and signaling use the next three' },
  client: { type: 'string', short: 'c', value: 'HOST', help: 'perf client: the server to test against (default 127.0.0.1)' },
  time: { type: 'string', short: 't', value: 'S', help: 'perf client: seconds to send (default 10)' },
  parallel: { type: 'string', short: 'P', value: 'N', help: 'perf client: parallel streams (default 1)' },
  reverse: { type: 'boolean', short: 'R', help: 'perf client: the server sends, the client receives' },
  bitrate: { type: 'string', short: 'b', value: 'RATE', help: 'perf client: bits per second per stream, 100M, 1G (default unlimited; UDP 1M)' },
  length: { type: 'string', short: 'l', value: 'LEN', help: 'perf client: bytes per write / datagram / message (128K; UDP 1448; 1M for http)' },
  interval: { type: 'string', short: 'i', value: 'S', help: 'perf client: seconds between reports (default 1)' },
  param: { type: 'string', multiple: true, value: 'NAME=V', help: "set a lab parameter (loss=10%, count=5000); wirelab lab <id> --help lists them; repeatable" },
};

const TRACING = ['trace', 'hex', 'trace-file', 'trace-lean', 'trace-libs'];
const PUBSUB_CONNECT = ['url', 'port-base', 'user', 'password', 'token'];

export const COMMANDS: Record<string, CommandSpec> = {
  up: {
    name: 'up',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'start every server on 127.0.0.1 (npm start)',
    details: `Starts every server (TCP/UDP echo, discard, chargen, HTTP(S), WebSocket, WebRTC signaling, FTP(S), SMTP, IMAP,
POP3) and prints a table with a command to try each one; runs until Ctrl-C or SIGTERM.
With --impair, matching servers sit behind the TCP proxy or UDP relay and a Toxiproxy-style control API listens on
port base + 1474. --config FILE and --set SERVICE.OPTION=VALUE give any server its options (limits, chaos, FTP's
passive range, requireTls, HTTP's allowTrace, the pub/sub doors' and the chat's limits; e.g. --set ws.maxPayload=65536,
--set mqtt.maxConnections=10; README "Protocol chaos" lists them) and start the control API too, where POST /servers/<name>/chaos changes a server's chaos while it
runs. With --json, one line: a JSON array of { name, proto, host, port, url?, try, ... }.`,
    flags: ['port-base', 'host', 'only', 'impair', 'config', 'set', 'engine', 'nats-url', 'on-unavailable', 'json', ...TRACING, 'pcap', 'pcap-real', 'har'],
  },
  lab: {
    name: 'lab',
    args: '[<id> | <path/to/lab.ts>]',
    minArgs: 0,
    maxArgs: 1,
    summary: 'run one lab (without an id: list the labs)',
    details: `Runs a built-in lab by id, or a lab file of your own from any folder (README, "Write your own lab"); the file
imports from 'wirelab'. Exit 0 when every claim held, 1 when one did not, 2 for a usage error or a lab not found.
Without an id, lists the labs. A lab's parameters (loss, delay, size, count, N peers) are set with --param
NAME=VALUE, checked against their kind and range (exit 2 when not); wirelab lab <id> --help lists them.`,
    flags: ['param', 'json', ...TRACING, 'pcap', 'pcap-real', 'har', 'diagram', 'report'],
  },
  labs: {
    name: 'labs',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'run every lab, then a summary table',
    details: 'Runs every lab in labs/ one after another; exit 1 if any failed. --pcap dir/ writes dir/<id>.pcapng per lab; --report DIR: DIR/index.html and a page per lab.',
    flags: ['json', ...TRACING, 'pcap', 'pcap-real', 'har', 'report'],
  },
  trace: {
    name: 'trace',
    args: '<show|convert|stats> <file.jsonl>',
    minArgs: 2,
    maxArgs: 2,
    summary: 'read a --trace-file: show it, convert it to pcapng, count it',
    details: `Reads the JSON lines of --trace-file. show: the pretty view (--proto, --cid with the other end of that
connection, --grep, --hex for the bytes on the wire). convert --to pcapng -o out.pcapng: a capture for Wireshark
(synthesized headers, the traced payloads; the file's payload cap cuts long ones). stats: per protocol, events,
connections, conversations and payload bytes each way (--json). Exit 0, 1 when the file has no trace event, 2 usage.`,
    flags: ['proto', 'cid', 'grep', 'hex', 'to', 'output', 'json'],
  },
  list: {
    name: 'list',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'the labs, one line each',
    details: 'Prints each lab id and title (with --json: an array of { id, title, protocols }).',
    flags: ['json'],
  },
  webrtc: {
    name: 'webrtc',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'a WebRTC peer: join a room, send stdin lines on a data channel, print what arrives',
    details: `A werift peer in a room of the signaling server (wirelab up's webrtc-signal, or --url). It calls every peer
already in the room and answers those who join later, as the browser page does (channels "chat" and "unreliable").
Each stdin line is sent on the --label channel to every connected peer; each message that arrives is printed on
stdout as "<peer id> <channel>: <text>". Progress (joined, connected, left) goes to stderr. End of stdin or Ctrl-C
hangs up (bye) and leaves.`,
    flags: ['url', 'port-base', 'room', 'label', 'timeout-ms', ...TRACING],
  },
  pub: {
    name: 'pub',
    args: '<topic> [<message> | -]',
    minArgs: 1,
    maxArgs: 2,
    summary: 'publish a message (or each stdin line) to the pub/sub broker',
    details: `Publishes <message> to <topic>, or each line of stdin with - or no message (like mosquitto_pub -l, kcat -P),
over the native protocol: --url tcp://HOST:PORT (default wirelab up's native TCP door, port base + 4222), tls://,
ws://HOST:PORT/pubsub or wss://. Prints where each message went (topic[partition]@offset; with --json one JSON line
each). Exit 0 when every publish was acknowledged, 1 when one was refused (the error code on stderr), 2 usage.`,
    flags: [...PUBSUB_CONNECT, 'key', 'acks', 'msg-id', 'header', 'json', ...TRACING],
  },
  sub: {
    name: 'sub',
    args: '<pattern>',
    minArgs: 1,
    maxArgs: 1,
    summary: 'subscribe to a topic or pattern (* one token, > the rest) and print messages',
    details: `Subscribes to <pattern> over the native protocol (as wirelab pub: --url, default port base + 4222) and prints
each message as topic[partition]@offset: payload (with --json one JSON line each). Without --group it is a fan-out
subscriber (every message); with --group G it joins a durable consumer group (--mode queue: each message to one
member; partitioned: each partition to one member). With --ack manual (the default) each message is acked once it is
printed. Runs until --count messages or Ctrl-C; exit 1 if the connection is lost.`,
    flags: [...PUBSUB_CONNECT, 'group', 'mode', 'ack', 'from', 'count', 'json', ...TRACING],
  },
  lineage: {
    name: 'lineage',
    args: '<topic> <id>',
    minArgs: 2,
    maxArgs: 2,
    summary: "one message's timeline: published, persisted, delivered, acked / redelivered / dead-lettered",
    details: `Prints the lineage the broker kept for one message (its bounded lineage store: recent messages only), read from
the HTTP door's admin API (--url http://HOST:PORT, default wirelab up's pubsub-http, port base + 8222): one line per
step with the time since it was published. <id> is an offset (partition 0), <partition>@<offset> as wirelab pub prints
it (orders.eu[0]@12 or 0@12), <partition>-<offset>, or the producer's msgId (looked up by reading the topic). With
--json one JSON object { topic, partition, offset, steps }. Exit 0 when found, 1 when not (or the door refused), 2 usage.`,
    flags: ['url', 'port-base', 'user', 'password', 'token', 'json'],
  },
  chat: {
    name: 'chat',
    args: '',
    minArgs: 0,
    maxArgs: 0,
    summary: 'the terminal chat client: stdin lines are messages to a room (npm run chat starts the server)',
    details: `Joins --room (default lobby) as --name on the chat server (--url ws://HOST:PORT/ws, default wirelab up's chat
row, port base + 3000; wss://HOST:PORT/ws or the page's https://HOST:PORT/ for TLS, every transport then over TLS,
the server's certificate checked against --ca FILE, default wirelab's local CA: up's chat-tls row, port base + 3443) and prints the room's recent history, then every message, join and leave. Each line typed is a
message; /join ROOM, /who, /history [N], /dm NAME TEXT, /transport ws|sse|poll, /leave, /quit, /help are commands
(/dm: peer to peer over a WebRTC data channel, werift, or the server's relay when ICE fails or with --no-webrtc). A lost connection reconnects and replays what was
missed (no gap, no duplicate), and so does /transport. Piped stdin: every line is sent and stored, then it exits 0. Exit 1 when the
server cannot be reached or refuses the name or room, 2 on a usage error. A registered name (the server's users) signs
in with --password-file F or $WIRELAB_PASSWORD, or --token T; over ws:// (no TLS) only with --allow-insecure-auth. A
certificate that does not verify is refused (WL_ERR_CHAT_TLS, exit 1): verification cannot be turned off.`,
    flags: ['url', 'port-base', 'room', 'name', 'password-file', 'token', 'allow-insecure-auth', 'ca', 'timeout-ms', 'transport', 'no-webrtc'],
  },
  impair: {
    name: 'impair',
    args: '[list | inspect P | toggle P | add P SPEC | update P T k=v.. | remove P T | relay R SPEC | reset]',
    minArgs: 0,
    maxArgs: 32,
    summary: "the impairment proxies and relays of a running wirelab up --impair: list, add / update / remove a toxic",
    details: `Talks to the Toxiproxy-compatible control API (--url http://HOST:PORT, default wirelab up's, port base + 1474 =
8474), as toxiproxy-cli does. list (the default): every TCP proxy with its toxics and every UDP relay. inspect P: one
proxy as JSON. toggle P: enable or disable a proxy. add P SPEC: toxics in --impair's syntax (latency=300ms,jitter=20ms;
key@up=V or key@down=V for one direction; toxicity=0.5). update P T k=v...: a toxic's attributes in Toxiproxy's units
(latency=100, rate=125) or its toxicity. remove P T. relay R SPEC: a UDP relay's impairments (loss=5%,delay@down=20ms).
reset: every toxic removed, every relay cleared. Exit 0 done, 1 the API refused or did not answer, 2 usage.`,
    flags: ['url', 'port-base', 'json'],
  },
  perf: {
    name: 'perf',
    args: '<server | client>',
    minArgs: 1,
    maxArgs: 1,
    summary: "iperf3-style throughput on wirelab's own pairs: tcp, udp, ws, http, webrtc",
    details: `wirelab perf server [-p PORT] listens on PORT (TCP and UDP; default 5201) and the next three (HTTP, WebSocket,
WebRTC signaling). wirelab perf client -c HOST --proto tcp|udp|ws|http|webrtc -t 5 -P 4 -R -b 100M -l 1400 prints a
line per interval (-i) and a sender and a receiver summary, as iperf3 does: retransmitted segments for TCP-based
tests (the kernel's, host-wide), loss and jitter for UDP. --impair 'latency=20ms,loss=1%' puts wirelab's impairment
proxy (TCP) or relay (UDP) in front of the data connections. --json prints one JSON object.`,
    flags: ['port', 'client', 'proto', 'time', 'parallel', 'reverse', 'bitrate', 'length', 'interval', 'impair', 'json', ...TRACING],
  },
  help: {
    name: 'help',
    args: '[<command>]',
    minArgs: 0,
    maxArgs: 1,
    summary: "this text, or a command's help",
    details: 'wirelab help <command> is wirelab <command> --help.',
    flags: [],
  },
};

function flagLine(name: string): string {
  const f = FLAGS[name]!;
  const left = `  ${f.short ? `-${f.short}, ` : ''}--${name}${f.value ? ` ${f.value}` : ''}`;
  return `${left.padEnd(24)} ${f.help}`;
}

export function usage(): string {
  const cmds = Object.values(COMMANDS).map((c) => `  wirelab ${`${c.name} ${c.args}`.padEnd(34)} ${c.summary}`);
  return `wirelab: real protocols on loopback, labs that check their own claims

usage:
${cmds.join('\n')}

  wirelab <command> --help               that command's flags
  wirelab --version                      the version`;
}

export function commandHelp(spec: CommandSpec): string {
  const flags = [...spec.flags, 'help'].map(flagLine);
  return `usage: wirelab ${spec.name}${spec.args ? ` ${spec.args}` : ''}${spec.flags.length ? ' [flags]' : ''}

${spec.details}

flags:
${flags.join('\n')}`;
}
