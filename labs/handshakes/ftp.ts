import { FtpClient } from '../../clients/ftp.ts';
import type { TraceEvent } from '../../core/trace/index.ts';
import { startFlightTap } from '../_flights.ts';
import { startLabFtp } from '../_ftp.ts';
import type { HandshakeRow, HandshakeRows } from './types.ts';
import { round } from '../../core/stats.ts';

/**
 * FTP rows: what happens before the first byte of a file can flow. Round trips are counted from what the server
 * traced: the greeting the client waits for, each command it sent and waited on, the TLS handshake's flights, and the
 * data connection's TCP connect.
 */
const ftpRows: HandshakeRows = async (ctx) => {
  // The plain login row logs in over plain TCP beside the AUTH TLS row, so this server allows it (the default refuses).
  const { server, sink, tracer } = await startLabFtp(ctx, { allowInsecureAuth: true });
  const rows: HandshakeRow[] = [];
  const since = (mark: number, kind: string): TraceEvent[] => sink.events.slice(mark).filter((e) => e.proto === 'ftp' && e.kind === kind);
  const codes = (mark: number): string[] => since(mark, 'reply').map((e) => e.summary.slice(0, 3));

  // Plain login: 220, USER 331, PASS 230.
  let mark = sink.events.length;
  let t0 = performance.now();
  const plain = await FtpClient.connect({ port: server.port, tracer, login: false, secure: false });
  ctx.defer(() => plain.close());
  await plain.send('USER demo');
  await plain.send('PASS demo');
  const loginMs = performance.now() - t0;
  const login = codes(mark);
  ctx.claim('FTP login: 220 greeting, USER → 331, PASS → 230', login.join(' ') === '220 331 230', login.join(' '));
  rows.push({
    handshake: 'FTP login (USER / PASS)',
    roundTrips: login.length, // each reply is one wait: the greeting, then one per command
    ms: round(loginMs, 2),
    steps: `220 ← ${since(mark, 'command').map((e) => e.summary.split(' ')[0]).join(' → ')} → 230`,
  });

  // Passive data connection: PASV → 227 (IPv4 only) or EPSV → 229, then the client's TCP connect to that port.
  const pasv = await plain.send('PASV');
  ctx.claim('PASV → 227 with the address and port to connect to', pasv.code === 227 && /\(\d+(,\d+){5}\)/.test(pasv.message), pasv.message);
  mark = sink.events.length;
  t0 = performance.now();
  const listing = await plain.list();
  const listMs = performance.now() - t0;
  const seen = codes(mark);
  const opened = sink.events.slice(mark).filter((e) => e.proto === 'ftp-data' && e.kind === 'open').length;
  const cmds = since(mark, 'command').map((e) => e.summary.split(' ')[0]!);
  ctx.claim(
    `${cmds.join(' + ')}: 229, then the listing over one new data connection`,
    listing.length > 0 && opened === 1 && seen[0] === '229' && seen.includes('150') && seen.at(-1) === '226',
    seen.join(' '),
  );
  rows.push({
    handshake: 'FTP passive listing (EPSV + data connection)',
    roundTrips: cmds.length + opened,
    ms: round(listMs, 2),
    steps: `${cmds[0]} → ${seen[0]}, TCP connect to that port, ${cmds.slice(1).join(', ')} → ${seen.slice(1).join(' ')}`,
  });

  // Explicit FTPS: 220, AUTH TLS → 234, the TLS handshake, USER 331, PASS 230, PBSZ 200, PROT 200. Through a relay
  // that sees every chunk, so the TLS handshake's round trips are counted on the wire.
  const tap = await startFlightTap(ctx, server.port);
  const tapMark = tap.mark();
  mark = sink.events.length;
  t0 = performance.now();
  const secure = await FtpClient.connect({ port: tap.port, tracer, secure: true });
  ctx.defer(() => secure.close());
  const tlsMs = performance.now() - t0;
  const tlsCodes = codes(mark);
  const tlsCommands = since(mark, 'command').map((e) => e.summary.split(' ')[0]!);
  const hs = sink.events.slice(mark).find((e) => e.proto === 'tls' && e.kind === 'handshake');
  const tlsFlights = tap.tlsServerFlightsSince(tapMark);
  const loginEnd = tlsCommands.indexOf('PASS') + 1;
  const repliesTo230 = tlsCodes.indexOf('230') + 1;
  ctx.claim(
    'FTPS: AUTH TLS → 234, then a TLS handshake on the same connection, then USER and PASS inside it',
    tlsCodes[0] === '220' && tlsCodes.includes('234') && hs !== undefined && tlsCommands.indexOf('AUTH') < tlsCommands.indexOf('USER') &&
      tlsFlights === (hs.meta?.version === 'TLSv1.3' ? 1 : 2),
    `${tlsCodes.join(' ')}; ${hs?.summary ?? 'no TLS handshake traced'}; ${tlsFlights} TLS server flight(s) counted on the wire`,
  );
  rows.push({
    handshake: 'FTPS login (AUTH TLS, explicit)',
    roundTrips: repliesTo230 + tlsFlights,
    ms: round(tlsMs, 2),
    steps: `220 ← AUTH TLS → 234, TLS (${hs?.meta?.version ?? '?'}, ${tlsFlights} RTT), ${tlsCommands.slice(1, loginEnd).join(' → ')} → 230`,
  });
  return rows;
};


export default ftpRows;
