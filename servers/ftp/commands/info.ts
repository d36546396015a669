import { stat } from 'node:fs/promises';
import { lsLine, readEntries } from '../listing.ts';
import type { CommandTable, FtpSession } from '../session.ts';
import { fsOr550, resolveOr550 } from './files.ts';

function features(s: FtpSession): string[] {
  return [
    ...(s.ctx.secureContext ? ['AUTH TLS', 'PBSZ', 'PROT'] : []),
    'EPRT',
    'EPSV',
    'MDTM',
    'MLST type*;size*;modify*;perm*;',
    'REST STREAM',
    'SIZE',
    'TVFS',
    'UTF8',
  ];
}

async function statPath(s: FtpSession, arg: string): Promise<void> {
  const r = await resolveOr550(s, arg);
  if (!r) return;
  const st = await fsOr550(s, () => stat(r.real));
  if (!st) return;
  const lines = st.isDirectory()
    ? (await readEntries(s.jail!, r.virtual, r.real, s.o.maxListEntries)).entries.map(lsLine)
    : [lsLine({ name: r.virtual.split('/').pop()!, st, blockedLink: false })];
  void s.reply(213, [`Status of ${r.virtual}:`, ...lines, 'End of status.']);
}

export const infoCommands: CommandTable = {
  FEAT: {
    help: 'FEAT',
    beforeLogin: true,
    run: (s) => void s.reply(211, ['Features:', ...features(s), 'End']),
  },
  OPTS: {
    help: 'OPTS UTF8 ON | OPTS MLST facts',
    beforeLogin: true,
    needsArg: true,
    run(s, arg) {
      const [name] = arg.trim().split(/\s+/);
      const opt = (name ?? '').toUpperCase();
      if (opt === 'UTF8' || opt === 'UTF-8') return void s.reply(200, 'UTF8 mode is always on.');
      if (opt === 'MLST') return void s.reply(200, 'MLST OPTS type;size;modify;perm;');
      void s.reply(501, 'Option not understood.');
    },
  },
  HELP: {
    help: 'HELP [command]',
    beforeLogin: true,
    run(s, arg) {
      const verb = arg.trim().toUpperCase();
      const table = s.ctx.commands;
      if (verb) {
        const h = Object.hasOwn(table, verb) ? table[verb] : undefined;
        return void s.reply(h ? 214 : 502, h ? `Syntax: ${h.help}` : `Unknown command ${JSON.stringify(verb.slice(0, 16))}.`);
      }
      const verbs = Object.keys(table).sort();
      const rows: string[] = [];
      for (let i = 0; i < verbs.length; i += 8) rows.push(verbs.slice(i, i + 8).map((v) => v.padEnd(5)).join(' '));
      void s.reply(214, ['The following commands are recognized:', ...rows, 'Help OK.']);
    },
  },
  SYST: { help: 'SYST', beforeLogin: true, run: (s) => void s.reply(215, 'UNIX Type: L8') },
  NOOP: { help: 'NOOP', beforeLogin: true, run: (s) => void s.reply(200, 'NOOP ok.') },
  STAT: {
    help: 'STAT [path]',
    beforeLogin: true,
    async run(s, arg) {
      if (arg.trim() && s.state === 'ready') return statPath(s, arg.trim());
      void s.reply(211, [
        'wirelab FTP server status:',
        `Connected from ${s.peer}`,
        s.user ? `Logged in as ${s.user.name}${s.readOnly ? ' (read-only)' : ''}` : 'Not logged in',
        `TYPE: ${s.type === 'A' ? 'ASCII' : 'BINARY'}, STRUcture: File, MODE: Stream`,
        `Control connection: ${s.secure ? 'TLS' : 'clear'}; data connections: ${s.prot === 'P' ? 'TLS' : 'clear'}`,
        s.transfer ? 'A transfer is in progress' : 'No data connection',
        'End of status.',
      ]);
    },
  },
};
