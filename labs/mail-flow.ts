import { defineLab } from '../core/lab/index.ts';
import { connectImap, type ImapFlow } from '../clients/imap.ts';
import { connectPop3 } from '../clients/pop3.ts';
import { createSmtpClient } from '../clients/smtp.ts';
import { measure, messageWithAttachment, startMailLab, type Traffic } from './mail/setup.ts';

const AUTH = { user: 'demo', pass: 'demo' };
/** Capabilities registered for POP3 (RFC 2449's list and the extensions after it): none is about mailboxes. */
const POP3_RFC_CAPABILITIES = ['TOP', 'USER', 'SASL', 'RESP-CODES', 'LOGIN-DELAY', 'PIPELINING', 'EXPIRE', 'UIDL', 'IMPLEMENTATION', 'STLS', 'AUTH-RESP-CODE', 'UTF8', 'LANG'];
const once = <T>(c: ImapFlow, event: string): Promise<T> => new Promise((resolve) => c.once(event, resolve));
const within = <T>(p: Promise<T>, ms: number): Promise<T | null> => Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms))]);

export default defineLab({
  id: 'mail-flow',
  title: 'Mail flow: SMTP sends, IMAP and POP3 read — the POP3-vs-IMAP table, row by row',
  concept:
    'SMTP only moves mail to the server; POP3 downloads the inbox from one session at a time, IMAP keeps every folder on the server and syncs several sessions.',
  protocols: ['smtp', 'imap', 'pop3'],
  timeoutMs: 60_000,
  async run(ctx) {
    // Reading is compared over plain TCP (byte counts of the protocols, not of TLS records): logins in clear allowed.
    const { store, smtp, imap, pop3 } = await startMailLab(ctx, { allowInsecureAuth: true });
    const rows: Array<[string, string, string]> = [];
    const inboxCount = (): number => store.mailbox('demo', 'INBOX')!.messages.length;

    // ---- a message sent over SMTP is read over IMAP and over POP3 ----
    const sender = await createSmtpClient({ port: smtp.port, tracer: ctx.tracer });
    const text = 'Hello over SMTP.\r\nRead me over IMAP and POP3.\r\n';
    await sender.send({ from: 'ann@localhost', to: 'demo@localhost', subject: 'hello', text });
    const big = messageWithAttachment('quarterly report', 200_000);
    await sender.send({ from: 'ann@localhost', to: 'demo@localhost', raw: big });
    sender.close();
    // Plain connections on both sides, so the byte counts compare the protocols and not TLS records.
    const a = await connectImap({ port: imap.port, auth: AUTH, noStartTls: true, tracer: ctx.tracer });
    const b = await connectImap({ port: imap.port, auth: AUTH, noStartTls: true, tracer: ctx.tracer });
    ctx.defer(() => Promise.allSettled([a.close(), b.close()]));
    await a.mailboxOpen('INBOX');
    await b.mailboxOpen('INBOX');
    const viaImap = await a.fetchOne('1', { source: true });
    const p = await connectPop3({ port: pop3.port, startTls: false, tracer: ctx.tracer });
    ctx.defer(() => p.destroy());
    await p.login('demo', 'demo');
    const viaPop = await p.retr(1);
    const stored = store.mailbox('demo', 'INBOX')!.messages[0]!.raw;
    ctx.claim(
      'the message sent over SMTP arrives byte for byte over IMAP and over POP3',
      !!viaImap && viaImap.source!.equals(stored) && viaPop.equals(stored) && stored.toString().includes('Read me over IMAP'),
      `${stored.length} B via SMTP; IMAP FETCH BODY[] ${viaImap ? viaImap.source!.length : 0} B; POP3 RETR ${viaPop.length} B`,
    );

    // ---- row 1: all folders vs the inbox only ----
    await a.append('Sent', 'From: demo@localhost\r\nSubject: a copy in Sent\r\n\r\nsent earlier\r\n', ['\\Seen']);
    const folders = (await a.list()).map((f) => f.path);
    const stat = await p.stat();
    const uidl = await p.uidl();
    const inboxValidity = store.mailbox('demo', 'INBOX')!.uidValidity;
    const popInboxOnly = stat.count === inboxCount() && uidl.every((u) => u.uid.startsWith(`${inboxValidity}.`));
    const imapAll = ['INBOX', 'Sent', 'Trash'].every((f) => folders.includes(f));
    ctx.claim('POP3 sees the inbox only: STAT counts INBOX, the message in Sent is not there', popInboxOnly, `STAT ${stat.count} messages; INBOX has ${inboxCount()}, Sent has 1`);
    ctx.claim('IMAP sees every folder on the server (LIST)', imapAll, folders.join(', '));
    rows.push(['inbox only / all folders', `STAT ${stat.count} = INBOX`, `LIST: ${folders.join(' ')}`]);

    // ---- row 2: one device at a time vs several ----
    const second = await connectPop3({ port: pop3.port, startTls: false, tracer: ctx.tracer });
    await second.command('USER demo');
    const refused = await second.command('PASS demo');
    await second.command('QUIT');
    second.destroy();
    await a.messageFlagsAdd('1', ['\\Flagged']);
    const seenByB = await b.fetchOne('1', { flags: true });
    ctx.claim('a second POP3 login on the same maildrop is refused while the first session holds it', !refused.ok && refused.text.startsWith('[IN-USE]'), `-ERR ${refused.text}`);
    ctx.claim('two IMAP sessions are logged in at once and see the same flags', !!seenByB && !!seenByB.flags?.has('\\Flagged'), 'A set \\Flagged on 1, B fetched FLAGS and got it');
    rows.push(['one session / several', `2nd login: -ERR ${refused.text.split(' ')[0]}`, '2 sessions, same \\Flagged']);

    // ---- row 3: reading part of a message before downloading it ----
    const size = store.mailbox('demo', 'INBOX')!.messages[1]!.size;
    const tStructure = await measure(imap.stats, () => a.fetchOne('2', { bodyStructure: true }));
    const tPart = await measure(imap.stats, () => a.fetchOne('2', { bodyParts: ['1'] }));
    const tFirst = await measure(imap.stats, () => a.fetchOne('2', { source: { start: 0, maxLength: 100 } }));
    const tTop = await measure(pop3.stats, () => p.top(2, 0));
    const tRetr = await measure(pop3.stats, () => p.retr(2));
    const [structure, part, first100, top, whole] = [tStructure.value, tPart.value, tFirst.value, tTop.value, tRetr.value];
    const kids = structure ? (structure.bodyStructure?.childNodes ?? []) : [];
    ctx.table('Reading the 200 KB report (message 2) without downloading it', ['step', 'protocol', 'bytes server→client', 'what came back'], [
      ['BODYSTRUCTURE', 'IMAP', tStructure.bytesOut, kids.map((k) => `${k.part} ${k.type} ${k.size} B`).join('; ')],
      ['BODY.PEEK[1] (text part)', 'IMAP', tPart.bytesOut, part ? JSON.stringify(part.bodyParts?.get('1')?.toString()) : '-'],
      ['BODY.PEEK[]<0.100>', 'IMAP', tFirst.bytesOut, `${first100 ? first100.source?.length : 0} B of ${size}`],
      ['TOP 2 0 (headers)', 'POP3', tTop.bytesOut, `${top.length} B of headers`],
      ['RETR 2 (only way to the text)', 'POP3', tRetr.bytesOut, `${whole.length} B`],
    ]);
    ctx.claim(
      'IMAP reads the text part alone: BODYSTRUCTURE plus BODY.PEEK[1] move under 5% of the message',
      kids.length === 2 && tStructure.bytesOut + tPart.bytesOut < size * 0.05 && !!part && part.bodyParts?.get('1')?.toString() === 'The report is attached.',
      `${tStructure.bytesOut + tPart.bytesOut} B for a ${size} B message`,
    );
    ctx.claim('IMAP BODY.PEEK[]<0.100> returns exactly the first 100 bytes', !!first100 && first100.source?.length === 100, `${tFirst.bytesOut} B on the wire`);
    ctx.claim('POP3 must RETR the whole message to read its text part', tRetr.bytesOut >= size && whole.length >= size - 2, `RETR moved ${tRetr.bytesOut} B for ${size} B`);
    ctx.note(`POP3 is not all-or-nothing: TOP (RFC 1939, optional) gave the ${top.length} B header block, but it cannot pick a MIME part.`);
    rows.push(['download to read / read partially', `TOP headers ${tTop.bytesOut} B; text needs RETR ${tRetr.bytesOut} B`, `structure + text part ${tStructure.bytesOut + tPart.bytesOut} B`]);

    // ---- row 4: creating, renaming and deleting mailboxes on the server ----
    await a.mailboxCreate('Projects');
    const afterCreate = store.listMailboxes('demo').includes('Projects');
    await a.mailboxRename('Projects', 'Archive');
    const afterRename = store.listMailboxes('demo').includes('Archive') && !store.listMailboxes('demo').includes('Projects');
    await a.mailboxDelete('Archive');
    const afterDelete = !store.listMailboxes('demo').includes('Archive');
    const popCreate = await p.command('CREATE Projects');
    const capa = await p.capa();
    ctx.claim('IMAP creates, renames and deletes mailboxes on the server', afterCreate && afterRename && afterDelete, 'CREATE Projects → RENAME Archive → DELETE Archive, each seen in the store');
    // What this observes is wirelab's server; that POP3 itself has no such command is the RFCs' command list (below).
    const capaNames = capa.map((c) => c.split(' ')[0]!.toUpperCase());
    const offMenu = capaNames.filter((c) => !POP3_RFC_CAPABILITIES.includes(c));
    ctx.claim(
      "wirelab's POP3 server answers CREATE with -ERR, and its CAPA offers only capabilities the POP3 RFCs define",
      !popCreate.ok && capaNames.length > 0 && offMenu.length === 0,
      `CREATE → -ERR ${popCreate.text}; CAPA: ${capaNames.join(' ')}${offMenu.length ? `; not in the RFCs: ${offMenu.join(' ')}` : ''}`,
    );
    ctx.note(
      'POP3 has no mailbox commands by definition: RFC 1939 defines USER, PASS, APOP, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP and UIDL on one maildrop, and its extensions (CAPA, RFC 2449; STLS, RFC 2595; AUTH, RFC 5034) add none that names a mailbox. Only wirelab\'s server was asked here.',
    );
    rows.push(['no folders / create, rename, delete', `-ERR ${popCreate.text}`, 'CREATE, RENAME, DELETE OK']);

    // ---- row 5: one way vs both ways (the server pushes to IMAP; a POP3 session is a snapshot) ----
    const before = (await p.stat()).count;
    const pushed = once<{ count: number }>(b, 'exists');
    const idling = b.idle();
    await new Promise((r) => setTimeout(r, 30));
    const t0 = performance.now();
    const late = await createSmtpClient({ port: smtp.port, tracer: ctx.tracer });
    await late.send({ from: 'ann@localhost', to: 'demo@localhost', subject: 'arrived later', text: 'new' });
    late.close();
    const exists = await within(pushed, 3000);
    const pushMs = Math.round(performance.now() - t0);
    const afterStat = (await p.stat()).count;
    ctx.claim('IMAP IDLE: the server pushes EXISTS when new mail arrives over SMTP', exists !== null && exists.count === inboxCount(), exists ? `* ${exists.count} EXISTS, ${pushMs} ms after the SMTP send began` : 'no push');
    ctx.claim('the open POP3 session does not see the new message (its maildrop is a snapshot)', afterStat === before, `STAT ${before} before, ${afterStat} after; INBOX now ${inboxCount()}`);
    rows.push(['one-way / two-way', `STAT stays ${afterStat}`, `pushed * ${exists?.count ?? '?'} EXISTS`]);

    // ---- row 7: sync (a flag changed in one session arrives in another through IDLE) ----
    const popRead = store.mailbox('demo', 'INBOX')!.messages[0]!;
    const seenAfterRetr = popRead.flags.has('\\Seen');
    const flagsAfterRetr = [...popRead.flags].join(' ') || '(none)';
    const flagPush = once<{ flags?: Set<string> }>(b, 'flags');
    await a.messageFlagsAdd('1', ['\\Seen']);
    const flags = await within(flagPush, 3000);
    ctx.claim('IMAP sync: \\Seen set in session A arrives in idling session B as FETCH FLAGS', !!flags?.flags?.has('\\Seen'), flags ? `B got FLAGS (${[...flags.flags!].join(' ')})` : 'no push');
    ctx.claim('POP3 leaves no trace on the server when reading: RETR did not mark the message \\Seen', !seenAfterRetr, `flags of message 1 after POP3 RETR 1: ${flagsAfterRetr}`);
    rows.push(['no sync / sync', 'RETR sets no flag', 'FLAGS pushed to the other session']);

    // ---- row 6: organizing mail on the server ----
    await a.mailboxCreate('Receipts');
    const popMove = await p.command('MOVE 1 Receipts');
    // ---- download and delete: POP3 DELE, applied at QUIT ----
    const expungePushed = once<{ seq: number }>(b, 'expunge');
    await p.dele(2);
    const afterDele = inboxCount();
    await p.quit();
    const afterQuit = inboxCount();
    const expunged = await within(expungePushed, 3000);
    ctx.claim('POP3 download-and-delete: DELE only marks; the message leaves the server at QUIT (UPDATE state)', afterDele === afterQuit + 1, `INBOX ${afterDele} after DELE, ${afterQuit} after QUIT`);
    ctx.claim('the idling IMAP session is told of the deletion (EXPUNGE)', expunged !== null, expunged ? `* ${expunged.seq} EXPUNGE` : 'none');
    await b.noop();
    await idling.catch(() => undefined);
    const moved = await a.messageMove('1', 'Receipts');
    const inReceipts = store.mailbox('demo', 'Receipts')!.messages.length;
    ctx.claim('IMAP organizes mail on the server (MOVE into a folder); POP3 has no such command', !!moved && inReceipts === 1 && !popMove.ok, `Receipts holds ${inReceipts}; POP3 MOVE → -ERR ${popMove.text}`);
    rows.push(['cannot organize / organize', `MOVE → -ERR`, `MOVE 1 Receipts OK`]);
    rows.push(['download and delete', `DELE + QUIT: INBOX ${afterDele} → ${afterQuit}`, `saw * ${expunged?.seq ?? '?'} EXPUNGE`]);

    // ---- row 8: "POP3 is fast, IMAP slower": bytes and round trips to read N messages ----
    const measureRead = async (n: number): Promise<{ pop: Traffic; imap: Traffic }> => {
      const inbox = store.mailbox('demo', 'INBOX')!;
      await store.remove('demo', 'INBOX', inbox.messages.map((m) => m.uid));
      for (let i = 0; i < n; i++) await store.append('demo', 'INBOX', Buffer.from(`From: ann@localhost\r\nSubject: note ${i}\r\n\r\n${'x'.repeat(2000)}\r\n`));
      const pop = await measure(pop3.stats, async () => {
        const c = await connectPop3({ port: pop3.port, startTls: false });
        await c.login('demo', 'demo');
        const { count } = await c.stat();
        for (let i = 1; i <= count; i++) await c.retr(i);
        await c.quit();
      });
      const im = await measure(imap.stats, async () => {
        const c = await connectImap({ port: imap.port, auth: AUTH, noStartTls: true });
        await c.mailboxOpen('INBOX');
        let got = 0;
        for await (const m of c.fetch('1:*', { source: true })) got += m.source ? 1 : 0;
        if (got !== n) throw new Error(`IMAP fetched ${got} of ${n}`);
        await c.logout();
      });
      return { pop, imap: im };
    };
    const one = await measureRead(1);
    const ten = await measureRead(10);
    const line = (proto: string, n: number, t: Traffic): Array<string | number> => [proto, n, t.commands, t.bytesOut, t.bytesIn, t.ms];
    ctx.table('Reading N messages of 2 KB (connect, log in, read all, log out; plain TCP)', ['protocol', 'N', 'round trips (commands)', 'bytes server→client', 'bytes client→server', 'ms'], [
      line('POP3', 1, one.pop),
      line('IMAP (imapflow)', 1, one.imap),
      line('POP3', 10, ten.pop),
      line('IMAP (imapflow)', 10, ten.imap),
    ]);
    ctx.measure('POP3 round trips for 10 messages', ten.pop.commands, 'commands');
    ctx.measure('IMAP round trips for 10 messages', ten.imap.commands, 'commands');
    ctx.measure('POP3 bytes for 10 messages', ten.pop.bytesOut + ten.pop.bytesIn, 'B');
    ctx.measure('IMAP bytes for 10 messages', ten.imap.bytesOut + ten.imap.bytesIn, 'B');
    ctx.claim('POP3 costs one round trip per message (RETR each): 9 more for 10 messages than for 1', ten.pop.commands - one.pop.commands === 9, `${one.pop.commands} → ${ten.pop.commands} commands`);
    ctx.claim('IMAP reads any number of messages in one FETCH: the same round trips for 10 as for 1', ten.imap.commands === one.imap.commands, `${one.imap.commands} → ${ten.imap.commands} commands`);
    const fewerTrips = ten.pop.commands < ten.imap.commands ? 'POP3' : ten.pop.commands > ten.imap.commands ? 'IMAP' : 'neither';
    const popBytes = ten.pop.bytesOut + ten.pop.bytesIn;
    const imapBytes = ten.imap.bytesOut + ten.imap.bytesIn;
    ctx.note(
      `"POP3 is fast, IMAP slower", as measured here for 10 messages: ${fewerTrips} needed fewer round trips (POP3 ${ten.pop.commands}, IMAP ${ten.imap.commands}); ` +
        `POP3 moved ${popBytes} B and IMAP ${imapBytes} B (${popBytes < imapBytes ? 'POP3' : 'IMAP'} fewer). POP3's cost grows with the number of messages, ` +
        `IMAP's is a fixed session set-up (${ten.imap.commands} commands whatever N). On loopback every round trip is ~0.1 ms; on a 50 ms link each one costs 50 ms.`,
    );
    rows.push(['fast / slower', `${ten.pop.commands} round trips, ${popBytes} B for 10`, `${ten.imap.commands} round trips, ${imapBytes} B for 10`]);

    ctx.table("The seed's POP3-vs-IMAP table, as observed", ['row (POP3 / IMAP)', 'POP3 here', 'IMAP here'], rows);
  },
});
