import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FtpClient } from '../clients/ftp.ts';
import { defineLab } from '../core/lab/index.ts';
import type { TraceEvent } from '../core/trace/index.ts';
import { startLabFtp } from './_ftp.ts';

/** The commands and replies the server traced after event `since`. */
function wire(events: TraceEvent[], since: number): { commands: string[]; replies: string[] } {
  const seen = events.slice(since).filter((e) => e.proto === 'ftp');
  return {
    commands: seen.filter((e) => e.kind === 'command').map((e) => e.summary),
    replies: seen.filter((e) => e.kind === 'reply').map((e) => e.summary),
  };
}

const code = (reply: string | undefined): number => Number((reply ?? '').slice(0, 3));

export default defineLab({
  id: 'ftp-commands',
  title: "FTP commands: the course's table on the wire",
  concept:
    'Each ftp client command (cd, pwd, dir / ls, type, struct, remotehelp, close, quit) becomes wire commands with numbered replies; TYPE A and I give different bytes for the same file; REST resumes a transfer.',
  protocols: ['ftp'],
  timeoutMs: 60_000,
  async run(ctx) {
    // Plain FTP on purpose: the TYPE A / I table counts bytes on the wire, which PROT P would turn into TLS records.
    const { server, sink, tracer } = await startLabFtp(ctx, { allowInsecureAuth: true });
    let client = await FtpClient.connect({ port: server.port, tracer, secure: false });
    ctx.defer(() => client.close());
    const rows: Array<Array<string | number>> = [];

    // One client command → the wire command(s) it sends and the reply; `check` says what the reply must be.
    const run = async (clientCmd: string, meaning: string, action: () => Promise<unknown>, check: (codes: number[]) => boolean): Promise<void> => {
      const mark = sink.events.length;
      await action();
      const w = wire(sink.events, mark);
      const codes = w.replies.map(code);
      rows.push([clientCmd, w.commands.join(', '), w.replies.map((r) => r.slice(0, 3)).join(', '), meaning]);
      ctx.claim(`${clientCmd} → ${w.commands.map((c) => c.split(' ')[0]).join(' + ')}`, check(codes), w.replies.join(' | '));
    };

    await run('cd docs', 'changes the remote folder', () => client.basic.cd('docs'), (c) => c.at(-1) === 250);
    let pwd = '';
    await run('pwd', 'shows the remote folder', async () => (pwd = await client.basic.pwd()), (c) => c.at(-1) === 257 && pwd === '/docs');
    await client.basic.cd('/');
    let listing = '';
    await run('dir', 'lists the remote folder, long form (classic ftp: active mode)', async () => (listing = (await client.active('LIST')).data.toString()), (c) =>
      c.includes(150) && c.at(-1) === 226 && /^-.* readme\.txt\r$/m.test(listing));
    await run('ls', 'lists the names only', async () => (listing = (await client.active('NLST', { eprt: true })).data.toString()), (c) =>
      c.includes(150) && c.at(-1) === 226 && listing.split('\r\n').includes('readme.txt'));
    let help = '';
    await run('remotehelp', "the server's own list of commands", async () => (help = (await client.send('HELP')).message), (c) =>
      c.at(-1) === 214 && ['RETR', 'STOR', 'CWD', 'PWD', 'TYPE', 'STRU', 'REST'].every((v) => help.includes(v)));
    await run('type ascii', 'sets TYPE A', () => client.send('TYPE A'), (c) => c.at(-1) === 200);
    await run('type binary', 'sets TYPE I', () => client.send('TYPE I'), (c) => c.at(-1) === 200);
    await run('struct file', 'sets STRU F, the only structure in use', () => client.send('STRU F'), (c) => c.at(-1) === 200);
    await run('struct record', 'STRU R: not implemented here', () => client.sendIgnoringError('STRU R'), (c) => c.at(-1) === 504);
    await run('struct page', 'STRU P: not implemented here', () => client.sendIgnoringError('STRU P'), (c) => c.at(-1) === 504);
    rows.push(['help', '(none: answered locally)', '-', 'the client program lists its own commands']);
    ctx.note('help is answered by the client program itself, so nothing goes on the wire; remotehelp is the HELP command.');

    // TYPE A vs TYPE I: the same LF file, two different byte counts.
    const original = await readFile(join(server.root, 'readme.txt'));
    const lf = original.filter((b) => b === 0x0a).length;
    await client.send('TYPE I');
    const binary = await client.active('RETR readme.txt');
    await client.send('TYPE A');
    const ascii = await client.active('RETR readme.txt');
    await client.send('TYPE I');
    const crlf = ascii.data.toString('latin1').split('\r\n').length - 1;
    ctx.table('The same file in both types', ['TYPE', 'bytes on the wire', 'LF', 'CRLF'], [
      ['I (binary)', binary.data.length, binary.data.filter((b) => b === 0x0a).length, binary.data.toString('latin1').split('\r\n').length - 1],
      ['A (ASCII)', ascii.data.length, ascii.data.filter((b) => b === 0x0a).length, crlf],
    ]);
    ctx.claim('TYPE I sends the file byte for byte', binary.data.equals(original), `${binary.data.length} B, file ${original.length} B`);
    ctx.claim(
      'TYPE A sends every LF as CRLF: one extra byte per line',
      ascii.data.length - binary.data.length === lf && crlf === lf && ascii.data.toString('latin1').replace(/\r\n/g, '\n') === original.toString('latin1'),
      `${ascii.data.length} - ${binary.data.length} = ${ascii.data.length - binary.data.length} B, ${lf} LF in the file`,
    );

    // REST: a download cut short, then resumed from where it stopped.
    const big = Buffer.alloc(512 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    await writeFile(join(server.root, 'big.bin'), big);
    const kept: Buffer[] = [];
    let keptBytes = 0;
    const cutAfter = 100_000;
    const stopper = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (keptBytes >= cutAfter) return cb(new Error('download interrupted on purpose'));
        kept.push(chunk);
        keptBytes += chunk.length;
        cb();
      },
    });
    let interrupted = false;
    await client.basic.downloadTo(stopper, 'big.bin').catch(() => (interrupted = true));
    client.close();
    client = await FtpClient.connect({ port: server.port, tracer, secure: false });
    const mark = sink.events.length;
    const rest = await client.download('big.bin', keptBytes);
    const w = wire(sink.events, mark);
    const joined = Buffer.concat([...kept, rest]);
    ctx.claim('the first download was interrupted part way', interrupted && keptBytes > 0 && keptBytes < big.length, `${keptBytes} of ${big.length} B kept`);
    ctx.claim(
      `REST ${keptBytes} + RETR sent only the missing bytes`,
      w.commands.includes(`REST ${keptBytes}`) && w.replies.some((r) => r.startsWith('350')) && rest.length === big.length - keptBytes,
      `${rest.length} B in the second transfer`,
    );
    ctx.claim('the two parts together are the file', joined.equals(big), `${joined.length} B, identical: ${joined.equals(big)}`);

    // close and quit both send QUIT; close keeps the ftp program running, so it can open a new connection.
    const markQuit = sink.events.length;
    await client.send('QUIT');
    client.close();
    const quitWire = wire(sink.events, markQuit);
    const quitReplies = quitWire.replies;
    client = await FtpClient.connect({ port: server.port, tracer, secure: false });
    const again = await client.basic.pwd();
    rows.push(['close / quit', quitWire.commands.join(', '), quitReplies.map((r) => r.slice(0, 3)).join(', '), 'ends the connection; after close the program stays and can open another']);
    ctx.claim('close / quit → QUIT, answered 221; a new connection works afterwards', quitReplies.some((r) => r.startsWith('221')) && again === '/', quitReplies.join(' | '));
    ctx.table("The course's FTP commands on the wire", ['client command', 'wire command(s)', 'replies', 'meaning'], rows);
  },
});
