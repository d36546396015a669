import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../core/paths.ts';
import { parseCommandLine, UsageError, type FlagValues } from './cli/args.ts';
import { COMMANDS, FLAGS, commandHelp, usage } from './cli/spec.ts';
import type { UpFlags } from './commands/up.ts';
import type { WebRtcFlags } from './commands/webrtc.ts';
import type { PubFlags, SubFlags } from './commands/pubsub.ts';
import type { LineageFlags } from './commands/lineage.ts';
import type { ChatFlags } from './commands/chat.ts';
import type { ImpairFlags } from './commands/impair.ts';
import type { PerfFlags } from './commands/perf.ts';
import type { TraceFlags } from './tracing.ts';
import type { TraceCommandFlags } from './commands/trace.ts';

// Each command's module is imported when that command runs: `up` alone loads every server, `chat` the chat app, and
// a process that only prints usage, --version or one lab should not pay for them (the test suite starts this CLI
// ~150 times; importing every command cost ~2 s of CPU each time).
const lab = (): Promise<typeof import('./commands/lab.ts')> => import('./commands/lab.ts');
const tracer = async (values: FlagValues): Promise<import('../core/trace/index.ts').Tracer> =>
  (await import('./tracing.ts')).tracerFromFlags(values as TraceFlags);

function version(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(argv, FLAGS, COMMANDS);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const cmd = err.command && COMMANDS[err.command] ? ` ${err.command}` : '';
    console.error(`wirelab${cmd}: ${err.message} (wirelab${cmd} --help)`);
    return 2;
  }
  const { command, positionals, values } = parsed;
  if (values.version) {
    if (command !== undefined || values.help) {
      console.error('wirelab: --version goes alone (wirelab --version)');
      return 2;
    }
    console.log(`wirelab ${version()}`);
    return 0;
  }
  if (command === undefined) {
    console.log(usage());
    return values.help ? 0 : 2;
  }
  if (values['trace-lean'] && !values['trace-file']) {
    console.error(`wirelab ${command}: --trace-lean goes with --trace-file F (it says what the file keeps)`);
    return 2;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    console.error(`wirelab: unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(', ')} (wirelab --help)`);
    return 2;
  }
  if (values.help) {
    if (command === 'lab' && positionals[0] !== undefined) return (await lab()).labHelp(positionals[0], commandHelp(spec));
    console.log(commandHelp(spec));
    return 0;
  }
  if (positionals.length < spec.minArgs || positionals.length > spec.maxArgs) {
    const extra = positionals.slice(spec.maxArgs).join(' ');
    console.error(`wirelab ${command}: ${extra ? `unexpected argument ${extra}` : 'missing argument'}; usage: wirelab ${command}${spec.args ? ` ${spec.args}` : ''} (wirelab ${command} --help)`);
    return 2;
  }
  return run(command, positionals, values);
}

async function run(command: string, args: string[], values: FlagValues): Promise<number> {
  switch (command) {
    case 'up':
      return (await import('./commands/up.ts')).up(values as UpFlags, await tracer(values));
    case 'lab':
      if (args.length === 0) {
        console.error('wirelab lab: which lab? run one with wirelab lab <id> (or a file: wirelab lab ./my-lab.ts)\n');
        return (await lab()).listCommand(values);
      }
      return (await lab()).labCommand(args[0]!, values, await tracer(values));
    case 'labs':
      return (await lab()).labsCommand(values, await tracer(values));
    case 'list':
      return (await lab()).listCommand(values);
    case 'webrtc':
      return (await import('./commands/webrtc.ts')).webrtcCommand(values as WebRtcFlags, await tracer(values));
    case 'pub':
      return (await import('./commands/pubsub.ts')).pubCommand(args, values as PubFlags, await tracer(values));
    case 'sub':
      return (await import('./commands/pubsub.ts')).subCommand(args, values as SubFlags, await tracer(values));
    case 'lineage':
      return (await import('./commands/lineage.ts')).lineageCommand(args, values as LineageFlags);
    case 'chat':
      return (await import('./commands/chat.ts')).chatCommand(values as ChatFlags);
    case 'trace':
      return (await import('./commands/trace.ts')).traceCommand(args, values as TraceCommandFlags);
    case 'impair':
      return (await import('./commands/impair.ts')).impairCommand(args, values as ImpairFlags);
    case 'perf':
      return (await import('./commands/perf.ts')).perfCommand(args, values as unknown as PerfFlags, await tracer(values));
    case 'help': {
      const about = args[0] === undefined ? undefined : COMMANDS[args[0]];
      if (args[0] !== undefined && !about) {
        console.error(`wirelab help: unknown command "${args[0]}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
        return 2;
      }
      console.log(about ? commandHelp(about) : usage());
      return 0;
    }
    default:
      throw new Error(`no handler for ${command}`);
  }
}

// A reader that goes away (`wirelab chat | head`, `wirelab up | grep -m1 http`) ends the run quietly, not in a crash:
// status 141 (128 + SIGPIPE), as cat and grep end when their pipe closes (an unhandled EPIPE printed a stack trace).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 141 : 1));
}

const code = await main(process.argv.slice(2));
// Exit once stdout is flushed, even if a lab left a handle open (its clean-up has already run).
process.stderr.write('', () => process.stdout.write('', () => process.exit(code)));
