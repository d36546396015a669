import net from 'node:net';
import type { CommandTable, FtpSession } from '../session.ts';

/**
 * PORT and EPRT name where we should connect for the next transfer. Only the control connection's own client address
 * is accepted (RFC 2577: no FTP bounce through us to a third host), and only an unprivileged port that is not our
 * own control port.
 */
function allowActive(s: FtpSession, verb: string, host: string, port: number): boolean {
  if (s.epsvAll) {
    void s.reply(503, `${verb} refused after EPSV ALL.`);
    return false;
  }
  if (host !== s.peer) {
    s.trace('*', 'refused', `${verb} to ${host}:${port} refused: the control client is ${s.peer} (FTP bounce)`, { host, port });
    void s.reply(504, `${verb} refused: data connections go only to your own address.`);
    return false;
  }
  if (port < 1024 || port === s.ctx.controlPort()) {
    s.trace('*', 'refused', `${verb} to port ${port} refused: privileged or our own control port`, { host, port });
    void s.reply(504, `${verb} refused: port ${port} is not one a client may use for data.`);
    return false;
  }
  s.data.connectTo(host, port);
  s.trace('*', 'active', `active mode: next transfer connects to ${host}:${port}`, { host, port });
  return true;
}

export const connectionCommands: CommandTable = {
  PASV: {
    help: 'PASV',
    async run(s) {
      if (s.epsvAll) return void s.reply(503, 'PASV refused after EPSV ALL.');
      if (!net.isIPv4(s.local)) return void s.reply(522, 'PASV needs IPv4; use EPSV.');
      const port = await s.data.listen(s.local, s.peer);
      const h = s.local.replace(/\./g, ',');
      void s.reply(227, `Entering Passive Mode (${h},${port >> 8},${port & 255}).`);
    },
  },
  EPSV: {
    help: 'EPSV [1|2|ALL]',
    async run(s, arg) {
      const a = arg.trim().toUpperCase();
      if (a === 'ALL') {
        s.epsvAll = true;
        return void s.reply(200, 'EPSV ALL: only EPSV from now on.');
      }
      const family = net.isIPv4(s.local) ? '1' : '2';
      if (a !== '' && a !== family) return void s.reply(522, `Network protocol not supported, use (${family}).`);
      const port = await s.data.listen(s.local, s.peer);
      void s.reply(229, `Entering Extended Passive Mode (|||${port}|).`);
    },
  },
  PORT: {
    help: 'PORT h1,h2,h3,h4,p1,p2',
    needsArg: true,
    run(s, arg) {
      const n = arg.trim().split(',').map((x) => (/^\d{1,3}$/.test(x) ? Number(x) : NaN));
      if (n.length !== 6 || n.some((x) => Number.isNaN(x) || x > 255)) return s.bad(501, 'Syntax: PORT h1,h2,h3,h4,p1,p2');
      const host = n.slice(0, 4).join('.');
      const port = n[4]! * 256 + n[5]!;
      if (allowActive(s, 'PORT', host, port)) void s.reply(200, 'PORT command successful.');
    },
  },
  EPRT: {
    help: 'EPRT |af|address|port|',
    needsArg: true,
    run(s, arg) {
      const a = arg.trim();
      const d = a[0];
      const parts = d ? a.split(d) : [];
      // "|1|127.0.0.1|5000|" splits into ['', '1', '127.0.0.1', '5000', ''].
      if (parts.length !== 5 || parts[0] !== '' || parts[4] !== '' || !/^\d{1,5}$/.test(parts[3] ?? '')) {
        return s.bad(501, 'Syntax: EPRT |af|address|port|');
      }
      const [, af, host, portText] = parts as [string, string, string, string];
      const port = Number(portText);
      if (af !== '1' && af !== '2') return void s.reply(522, 'Network protocol not supported, use (1,2).');
      if ((af === '1' && !net.isIPv4(host)) || (af === '2' && !net.isIPv6(host)) || port > 65535) {
        return s.bad(501, 'Syntax: EPRT |af|address|port|');
      }
      if (allowActive(s, 'EPRT', host, port)) void s.reply(200, 'EPRT command successful.');
    },
  },
  TYPE: {
    help: 'TYPE A|I|L 8',
    needsArg: true,
    run(s, arg) {
      const t = arg.trim().toUpperCase().split(/\s+/);
      if ((t[0] === 'A' && (t.length === 1 || t[1] === 'N')) || t[0] === 'I' || (t[0] === 'L' && t[1] === '8')) {
        s.type = t[0] === 'A' ? 'A' : 'I';
        return void s.reply(200, s.type === 'A' ? 'Type set to A (ASCII: LF sent as CRLF).' : 'Type set to I (binary).');
      }
      if (t[0] === 'A' || t[0] === 'E' || t[0] === 'L') return void s.reply(504, 'Type not implemented for that parameter.');
      s.bad(501, 'Syntax: TYPE A|I|L 8');
    },
  },
  STRU: {
    help: 'STRU F',
    needsArg: true,
    run(s, arg) {
      const v = arg.trim().toUpperCase();
      if (v === 'F') return void s.reply(200, 'Structure set to F (file).');
      if (v === 'R' || v === 'P') return void s.reply(504, `Structure ${v} (${v === 'R' ? 'record' : 'page'}) not implemented.`);
      s.bad(501, 'Syntax: STRU F|R|P');
    },
  },
  MODE: {
    help: 'MODE S',
    needsArg: true,
    run(s, arg) {
      const v = arg.trim().toUpperCase();
      if (v === 'S') return void s.reply(200, 'Mode set to S (stream).');
      if (v === 'B' || v === 'C' || v === 'Z') return void s.reply(504, `Mode ${v} not implemented.`);
      s.bad(501, 'Syntax: MODE S|B|C');
    },
  },
  REST: {
    help: 'REST <offset>',
    needsArg: true,
    run(s, arg) {
      const v = arg.trim();
      if (!/^\d{1,15}$/.test(v)) return s.bad(501, 'Syntax: REST <byte offset>');
      s.restOffset = Number(v);
      void s.reply(350, `Restarting at ${s.restOffset}. Send STOR or RETR to go on.`);
    },
  },
  ABOR: {
    help: 'ABOR',
    async run(s) {
      const running = s.transfer;
      if (!running) {
        s.data.reset();
        return void s.reply(225, 'No transfer to abort.');
      }
      s.aborting = true;
      s.data.destroy();
      await running;
      s.aborting = false;
      void s.reply(226, 'ABOR successful.');
    },
  },
  ALLO: { help: 'ALLO <bytes>', run: (s) => void s.reply(202, 'No storage allocation necessary.') },
};
