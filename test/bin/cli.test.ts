import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { COMMANDS, FLAGS, commandHelp } from '../../bin/cli/spec.ts';
import { parseCommandLine, UsageError } from '../../bin/cli/args.ts';
import { CLI, runCli } from '../helpers/cli.ts';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

test('--version and -V print the version, exit 0', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `wirelab ${version}\n`);
  }
});

test("wirelab <command> --help prints that command's usage and flags (and wirelab help <command> the same), exit 0", async () => {
  // Three processes at a time. `wirelab help <name>` prints the same commandHelp() as `<name> --help` (one code path
  // for every command), so it runs as a process for two commands and the rest compare with commandHelp() directly.
  const names = Object.keys(COMMANDS).filter((c) => c !== 'help');
  const viaHelpFor = new Set([names[0], 'pub']);
  const check = async (name: string): Promise<void> => {
    const r = await runCli([name, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^usage: wirelab ${name}\\b`));
    for (const f of COMMANDS[name]!.flags) assert.match(r.stdout, new RegExp(`--${f}\\b`), `${name} --help names --${f}`);
    if (viaHelpFor.has(name)) assert.equal((await runCli(['help', name])).stdout, r.stdout);
    else assert.equal(`${commandHelp(COMMANDS[name]!)}\n`, r.stdout, `wirelab help ${name} prints what ${name} --help does`);
  };
  const queue = [...names];
  await Promise.all(Array.from({ length: 3 }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) await check(name);
  }));
  const top = await runCli(['--help']);
  assert.equal(top.code, 0);
  for (const name of Object.keys(COMMANDS)) assert.match(top.stdout, new RegExp(`wirelab ${name}\\b`));
});

test('an unknown flag is one line naming it, exit 2', async () => {
  for (const args of [['up', '--prot-base', '1'], ['lab', 'latency', '--jsn'], ['--frobnicate'], ['lab', '-x']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`unknown flag ${args.find((a) => a.startsWith('-'))!}\\b`));
  }
});

test('a flag that does not apply to the command is an error naming it, exit 2', async () => {
  const r = await runCli(['lab', 'latency', '--port-base', '7000']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--port-base does not apply to "lab"/);
  const room = await runCli(['up', '--room', 'x']);
  assert.equal(room.code, 2);
  assert.match(room.stderr, /--room does not apply to "up"/);
});

test('a missing value, a value given to a switch, an extra argument and an unknown command are one-line usage errors', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['up', '--port-base'], /--port-base needs a value/],
    [['up', '--json=yes'], /--json takes no value/],
    [['labs', 'latency'], /unexpected argument latency/],
    [['gopher'], /unknown command "gopher"/],
    [['help', 'gopher'], /unknown command "gopher"/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});

test('wirelab lab with no id lists the labs (and says how to run one)', async () => {
  const r = await runCli(['lab']);
  assert.equal(r.code, 0, r.stderr);
  const list = await runCli(['list', '--json']);
  const labs = JSON.parse(list.stdout) as Array<{ id: string }>;
  assert.ok(labs.length >= 10);
  for (const { id } of labs) assert.match(r.stdout, new RegExp(`^${id} `, 'm'));
  assert.match(r.stderr, /wirelab lab <id>/);
});

test('the parser: flags before or after the command, --flag=value, repeated flags, -- ends flags', () => {
  const p = parseCommandLine(['--json', 'up', '--impair=a', '--impair', 'b', '--port-base', '-1'], FLAGS, COMMANDS);
  assert.deepEqual(p, { command: 'up', positionals: [], values: { json: true, impair: ['a', 'b'], 'port-base': '-1' } });
  assert.deepEqual(parseCommandLine(['lab', '--', '--odd-name.ts'], FLAGS, COMMANDS).positionals, ['--odd-name.ts']);
  assert.throws(() => parseCommandLine(['labs', '--url', 'x'], FLAGS, COMMANDS), UsageError);
});

test('stdin lines for wirelab webrtc: CRLF trimmed, a line over the limit reported once and skipped to its newline', async () => {
  const { LineSplitter } = await import('../../bin/cli/lines.ts');
  const lines: string[] = [];
  const tooLong: number[] = [];
  const s = new LineSplitter(8, (l) => lines.push(l), (n) => tooLong.push(n));
  s.push(Buffer.from('one\r\ntw'));
  s.push(Buffer.from('o\n' + 'x'.repeat(20)));
  s.push(Buffer.from('y'.repeat(20) + '\nthree'));
  s.end();
  assert.deepEqual(lines, ['one', 'two', 'three']);
  assert.deepEqual(tooLong, [40]);
});

test('a reader that closes the pipe early (wirelab lab X | head -1) ends the CLI with 141 and no stack trace', async () => {
  const child = spawn(process.execPath, [CLI, 'lab', 'http-methods'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The first line read, the pipe goes away, as `head -1` does.
  await new Promise((resolve) => child.stdout.once('data', resolve));
  child.stdout.destroy();
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 141, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled|at /);
});
