import { parseArgs } from 'node:util';
import { labCommand, labsCommand, listCommand } from './commands/lab.ts';
import { up } from './commands/up.ts';
import { tracerFromFlags } from './tracing.ts';

const USAGE = `wirelab: real protocols on loopback, labs that check their own claims

usage:
  wirelab up [--port-base N] [--host H] [--only a,b] [--impair SPEC]... [--json]   start every server (npm start)
  wirelab lab <id | ./my-lab.ts> [--json]                        run one lab
  wirelab labs [--json]                                          run every lab, then a summary table
  wirelab list                                                   the labs, one line each

tracing (any command):
  --trace              every command, frame and datagram on stderr
  --hex                hex dumps of payloads under each traced line (implies --trace)
  --trace-file F       the same events as JSON lines in F

--port-base N: each server listens on N + its IANA port (default 7000: tcp echo 7007); 0 picks free ports.
--impair SPEC: put servers behind impairments, e.g. --impair 'tcp-echo:latency=20ms,jitter=5ms' --impair 'udp:loss=5%'
  (README "Impairments"); adds the Toxiproxy-style control API on port base + 1474.
--json: findings (lab) or the endpoint list (up) as JSON on stdout, nothing else there.`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        trace: { type: 'boolean' },
        hex: { type: 'boolean' },
        'trace-file': { type: 'string' },
        'port-base': { type: 'string' },
        host: { type: 'string' },
        only: { type: 'string' },
        impair: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    console.error(`wirelab: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const { values: flags, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (flags.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return command === undefined && !flags.help ? 2 : 0;
  }
  const tracer = tracerFromFlags(flags);
  switch (command) {
    case 'up':
      return up(flags, tracer);
    case 'lab':
      if (rest.length !== 1) {
        console.error('usage: wirelab lab <id | ./path/to/lab.ts> [--json] [--trace]');
        return 2;
      }
      return labCommand(rest[0]!, flags, tracer);
    case 'labs':
      return labsCommand(flags, tracer);
    case 'list':
      return listCommand();
    default:
      console.error(`wirelab: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

const code = await main(process.argv.slice(2));
// Exit once stdout is flushed, even if a lab left a handle open (its clean-up has already run).
process.stderr.write('', () => process.stdout.write('', () => process.exit(code)));
