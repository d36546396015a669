import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FtpClient, type DataConnectionInfo } from '../clients/ftp.ts';
import { defineLab } from '../core/lab/index.ts';
import type { TraceEvent } from '../core/trace/index.ts';
import { announcedPort, portOf, startLabFtp } from './_ftp.ts';

/** The server's own record of a data connection: its trace event, opened after `since`. */
function serverSide(events: TraceEvent[], since: number): TraceEvent | undefined {
  return events.slice(since).find((e) => e.proto === 'ftp-data' && e.kind === 'open');
}

const row = (label: string, c: DataConnectionInfo | undefined, server: TraceEvent | undefined, bytes: number): Array<string | number> => [
  label,
  c ? `the ${c.openedBy}` : '-',
  c ? (c.openedBy === 'client' ? `client ${c.client} → server ${c.server}` : `server ${c.server} → client ${c.client}`) : '-',
  String(server?.meta?.route ?? '-'),
  bytes,
];

export default defineLab({
  id: 'ftp-modes',
  title: 'FTP active vs passive: who opens the data connection',
  concept:
    'In active mode the server connects to a port the client names (PORT / EPRT); in passive mode the client connects to a port the server names (PASV / EPSV), which is why passive works from behind NAT and active does not.',
  protocols: ['ftp', 'tcp'],
  timeoutMs: 60_000,
  async run(ctx) {
    const { server, sink, tracer } = await startLabFtp(ctx);
    const original = await readFile(join(server.root, 'readme.txt'));
    const client = await FtpClient.connect({ port: server.port, tracer });
    ctx.defer(() => client.close());

    // Passive: basic-ftp sends EPSV, then connects to the port in the 229 reply.
    let mark = sink.events.length;
    const passiveData = await client.download('readme.txt');
    const passive = client.dataConnections.at(-1);
    const passiveServer = serverSide(sink.events, mark);
    const epsvReplies = sink.events.slice(mark).filter((e) => e.kind === 'reply' && e.proto === 'ftp' && e.summary.startsWith('229'));
    const usedPort = announcedPort(epsvReplies.at(-1)?.summary ?? '');

    ctx.claim(
      'passive (EPSV): the client opened the data connection, to the port the server announced in its 229 reply',
      passive?.openedBy === 'client' && usedPort !== undefined && portOf(passive.server) === usedPort,
      `229 announced port ${usedPort}; client connected ${passive?.client} → ${passive?.server}`,
    );
    ctx.claim(
      "the server saw the same connection from its side: the client's address and port as the source",
      passiveServer?.meta?.mode === 'passive' && String(passiveServer.meta.route).includes(`client ${passive?.client}`),
      String(passiveServer?.meta?.route),
    );
    ctx.claim('the port in the 229 reply is one the server opened for this transfer, not a fixed port 20', usedPort !== undefined && usedPort !== 20 && usedPort !== server.port, `port ${usedPort}; control port ${server.port}`);

    // Active: PORT, then the server connects to the client's listening socket.
    mark = sink.events.length;
    const active = await client.active('RETR readme.txt');
    const activeServer = serverSide(sink.events, mark);
    const portCmd = sink.events.slice(mark).find((e) => e.kind === 'command' && e.summary.startsWith('PORT'));
    const portNums = (portCmd?.summary.slice(5).split(',') ?? []).map(Number);
    const namedPort = portNums.length === 6 ? portNums[4]! * 256 + portNums[5]! : -1;
    ctx.claim(
      'active (PORT): the server opened the data connection, to the port the client named in PORT',
      active.connection?.openedBy === 'server' && portOf(active.connection.client) === namedPort,
      `${portCmd?.summary} names port ${namedPort}; the server connected ${active.connection?.server} → ${active.connection?.client}`,
    );
    ctx.claim(
      'the server traced the same direction: server → client',
      activeServer?.meta?.mode === 'active' && String(activeServer.meta.route).startsWith('server '),
      String(activeServer?.meta?.route),
    );
    const sourcePort = portOf(active.connection?.server);
    ctx.note(
      `RFC 959 has active data connections come from the server's port 20 (L-1); this server lets the kernel choose (binding port 20 needs root), and here it connected from port ${sourcePort}.`,
    );

    mark = sink.events.length;
    const eprt = await client.active('RETR readme.txt', { eprt: true });
    ctx.claim(
      'EPRT (RFC 2428) works the same way as PORT, with the address family spelled out',
      eprt.connection?.openedBy === 'server' && sink.events.slice(mark).some((e) => e.kind === 'command' && e.summary.startsWith('EPRT |1|')),
      `${eprt.final.code}; ${eprt.connection?.server} → ${eprt.connection?.client}`,
    );
    ctx.claim(
      'all three modes delivered the same bytes as the file on the server',
      passiveData.equals(original) && active.data.equals(original) && eprt.data.equals(original),
      `${original.length} B each: passive ${passiveData.length}, PORT ${active.data.length}, EPRT ${eprt.data.length}`,
    );
    ctx.table(
      'Data connections, seen from both sides',
      ['mode', 'opened by', 'as the client saw it', 'as the server traced it', 'bytes'],
      [row('passive (EPSV)', passive, passiveServer, passiveData.length), row('active (PORT)', active.connection, activeServer, active.data.length)],
    );

    // A client behind NAT or a firewall: inbound connections are refused, outbound ones are fine.
    let refusedCode: number | undefined;
    mark = sink.events.length;
    try {
      await client.active('RETR readme.txt', { inbound: 'refuse' });
    } catch (err) {
      refusedCode = (err as { code?: number }).code;
    }
    const serverSaw = sink.events.slice(mark).find((e) => e.proto === 'ftp' && e.kind === 'error' && /data connection failed/.test(e.summary));
    ctx.claim(
      'with inbound connections refused on the client side, active mode fails: the server cannot connect and answers 425',
      refusedCode === 425 && serverSaw !== undefined,
      `reply ${refusedCode}; server: ${serverSaw?.summary}`,
    );
    const behindNat = await client.download('readme.txt');
    ctx.claim(
      'under the same rule passive mode still works, because the client makes every connection (outbound only)',
      behindNat.equals(original) && client.dataConnections.at(-1)?.openedBy === 'client',
      `${behindNat.length} B over ${client.dataConnections.at(-1)?.client} → ${client.dataConnections.at(-1)?.server}`,
    );

    // FTP bounce: PORT naming another host is refused, so the server cannot be used to reach it.
    mark = sink.events.length;
    const bounce = await client.sendIgnoringError('PORT 127,0,0,2,4,1');
    ctx.claim(
      'PORT naming another address (127.0.0.2) is refused (no FTP bounce) and no connection is attempted',
      bounce.code === 504 && !sink.events.slice(mark).some((e) => e.proto === 'ftp-data' && e.kind === 'open'),
      `${bounce.code} ${bounce.message.slice(4)}`,
    );
    ctx.note('NAT is played here by refusing inbound connections on loopback; no address translation happens on 127.0.0.1.');
  },
});
