import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../core/paths.ts';
import { parseCommandLine, UsageError, type FlagValues } from './cli/args.ts';
import { COMMANDS, FLAGS, commandHelp, usage } from './cli/spec.ts';
import { labCommand, labHelp, labsCommand, listCommand } from './commands/lab.ts';
import { up, type UpFlags } from './commands/up.ts';
import { webrtcCommand, type WebRtcFlags } from './commands/webrtc.ts';
import { pubCommand, subCommand, type PubFlags, type SubFlags } from './commands/pubsub.ts';
import { lineageCommand, type LineageFlags } from './commands/lineage.ts';
import { chatCommand, type ChatFlags } from './commands/chat.ts';
import { impairCommand, type ImpairFlags } from './commands/impair.ts';
import { perfCommand, type PerfFlags } from './commands/perf.ts';
import { tracerFromFlags, type TraceFlags } from './tracing.ts';
import { traceCommand, type TraceCommandFlags } from './commands/trace.ts';

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
  const spec = COMMANDS[command];
  if (!spec) {
    console.error(`wirelab: unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(', ')} (wirelab --help)`);
    return 2;
  }
  if (values.help) {
    if (command === 'lab' && positionals[0] !== undefined) return labHelp(positionals[0], commandHelp(spec));
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
      return up(values as UpFlags, tracerFromFlags(values as TraceFlags));
    case 'lab':
      if (args.length === 0) {
        console.error('wirelab lab: which lab? run one with wirelab lab <id> (or a file: wirelab lab ./my-lab.ts)\n');
        return listCommand(values);
      }
      return labCommand(args[0]!, values, tracerFromFlags(values as TraceFlags));
    case 'labs':
      return labsCommand(values, tracerFromFlags(values as TraceFlags));
    case 'list':
      return listCommand(values);
    case 'webrtc':
      return webrtcCommand(values as WebRtcFlags, tracerFromFlags(values as TraceFlags));
    case 'pub':
      return pubCommand(args, values as PubFlags, tracerFromFlags(values as TraceFlags));
    case 'sub':
      return subCommand(args, values as SubFlags, tracerFromFlags(values as TraceFlags));
    case 'lineage':
      return lineageCommand(args, values as LineageFlags);
    case 'chat':
      return chatCommand(values as ChatFlags);
    case 'trace':
      return traceCommand(args, values as TraceCommandFlags);
    case 'impair':
      return impairCommand(args, values as ImpairFlags);
    case 'perf':
      return perfCommand(args, values as unknown as PerfFlags, tracerFromFlags(values as TraceFlags));
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

const code = await main(process.argv.slice(2));
// Exit once stdout is flushed, even if a lab left a handle open (its clean-up has already run).
process.stderr.write('', () => process.stdout.write('', () => process.exit(code)));
