// Protocol chaos beyond SMTP (issue 17): IMAP, POP3 and FTP answer a chosen command with a failure, or drop the
// connection, and the lab watches what well-behaved clients do with it: imapflow, wirelab's POP3 client, basic-ftp,
// and Python's imaplib, poplib and ftplib. Every failure is injected by the server's chaos rules
// (servers/line/chaos.ts, the same rules `wirelab up --config` and the control API set).
import { spawn } from 'node:child_process';
import { defineLab } from '../core/lab/index.ts';
import { connectFtp } from '../clients/ftp.ts';
import { connectImap, type ImapFlow } from '../clients/imap.ts';
import { connectPop3 } from '../clients/pop3.ts';
import { WELCOME_TEXT } from '../servers/ftp/index.ts';
import { startImapServer } from '../servers/imap/index.ts';
import { openMailStore } from '../servers/mail/store/index.ts';
import { startPop3Server } from '../servers/pop3/index.ts';
import { startLabFtp } from './_ftp.ts';

const AUTH = { user: 'demo', pass: 'demo' };
const errText = (err: unknown): string => {
  const e = err as { message?: string; code?: number | string; responseText?: string; responseStatus?: string };
  return `${e?.responseStatus ? `${e.responseStatus} ` : ''}${e?.responseText ?? e?.message ?? String(err)}`.replace(/\s+/g, ' ').slice(0, 90);
};
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err ?? new Error('rejected');
  }
}

/** Runs a Python script; its last stdout line is JSON. Null when python3 is not there. */
function python(script: string, args: string[]): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', () => resolve(null));
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Record<string, string>);
      } catch {
        resolve({ error: `python3 exited ${code}: ${err.trim().split('\n').pop() ?? ''}` });
      }
    });
  });
}

// Each call's exception class, as the library raises it: what the library makes of the server's answer.
const PYTHON = `
import ftplib, imaplib, poplib, json, sys
ftp_port, imap_port, pop_port = (int(a) for a in sys.argv[1:4])
out = {}
def kind(f):
    try:
        r = f()
        return 'ok' + (' ' + r[0] if isinstance(r, tuple) and isinstance(r[0], str) else '')
    except Exception as e:
        return type(e).__module__.split('.')[0] + '.' + type(e).__qualname__ + ': ' + str(e)[:60]
f = ftplib.FTP(); f.connect('127.0.0.1', ftp_port, timeout=10); f.login('demo', 'demo')
got = []
out['ftp 451'] = kind(lambda: f.retrbinary('RETR readme.txt', got.append))
out['ftp 550'] = kind(lambda: f.retrbinary('RETR readme.txt', got.append))
out['ftp retry'] = kind(lambda: f.retrbinary('RETR readme.txt', got.append))
out['ftp bytes'] = str(len(b''.join(got)))
f.quit()
p = poplib.POP3('127.0.0.1', pop_port, timeout=10); p.user('demo'); p.pass_('demo')
out['pop3 -ERR'] = kind(lambda: p.retr(1))
out['pop3 retry'] = kind(lambda: p.retr(1))
p.quit()
m = imaplib.IMAP4('127.0.0.1', imap_port, timeout=10); m.login('demo', 'demo'); m.select('INBOX')
out['imap NO'] = kind(lambda: m.fetch('1', '(RFC822.SIZE)'))
out['imap BYE'] = kind(lambda: m.noop())
print(json.dumps(out))
`;

export default defineLab({
  id: 'protocol-chaos',
  title: 'IMAP, POP3 and FTP under injected failures: what a well-behaved client does',
  concept:
    'A failure reply leaves the session usable and the client may retry (4xx / [SYS/TEMP] / NO: try again; 5xx: do not); a dropped connection loses what was not committed: POP3 deletes nothing without QUIT.',
  protocols: ['imap', 'pop3', 'ftp'],
  timeoutMs: 60_000,
  async run(ctx) {
    const store = await openMailStore({ memory: true });
    for (const s of ['first', 'second']) await store.append('demo', 'INBOX', Buffer.from(`From: ann@localhost\r\nSubject: ${s}\r\n\r\n${s} message\r\n`));
    const imap = await ctx.start(startImapServer({ store, tracer: ctx.tracer, allowInsecureAuth: true }));
    const pop3 = await ctx.start(startPop3Server({ store, tracer: ctx.tracer, allowInsecureAuth: true }));
    const { server: ftp } = await startLabFtp(ctx, { allowInsecureAuth: true });
    const inbox = (): number => store.mailbox('demo', 'INBOX')!.messages.length;
    const rows: Array<Array<string | number>> = [];

    // ---- POP3 (wirelab's client) ----
    pop3.setChaos({ rules: [{ command: 'RETR', times: 1 }] });
    const p = await connectPop3({ port: pop3.port, startTls: false, tracer: ctx.tracer });
    ctx.defer(() => p.destroy());
    await p.login('demo', 'demo');
    const popErr = await failure(p.retr(1));
    const popRetry = await p.retr(1).catch(() => null);
    rows.push(['POP3 (wirelab client)', 'RETR → -ERR [SYS/TEMP]', errText(popErr), popRetry ? `retried on the same session: ${popRetry.length} B` : 'retry failed']);
    ctx.claim(
      'POP3: a -ERR [SYS/TEMP] on RETR fails that command only; the same session retries and gets the message',
      popErr !== undefined && /SYS\/TEMP/.test(errText(popErr)) && popRetry !== null && popRetry.equals(store.mailbox('demo', 'INBOX')!.messages[0]!.raw),
      `${errText(popErr)}; retry ${popRetry?.length ?? 0} B`,
    );
    pop3.setChaos({ rules: [{ command: 'QUIT', action: 'abrupt', times: 1 }] });
    await p.dele(1);
    const quitErr = await failure(p.quit());
    const before = inbox();
    const p2 = await connectPop3({ port: pop3.port, startTls: false, tracer: ctx.tracer });
    ctx.defer(() => p2.destroy());
    await p2.login('demo', 'demo');
    const afterCut = (await p2.stat()).count;
    await p2.dele(1);
    await p2.quit();
    const afterQuit = inbox();
    rows.push(['POP3 (wirelab client)', 'DELE 1, then QUIT cut with no reply', errText(quitErr), `reconnected: ${afterCut} messages; DELE + a clean QUIT: ${afterQuit}`]);
    ctx.claim(
      'POP3: a connection lost before QUIT deletes nothing (no UPDATE state); the same DELE with a clean QUIT does',
      quitErr !== undefined && afterCut === before && before === 2 && afterQuit === 1,
      `after the cut ${afterCut} of ${before} left; after DELE + QUIT ${afterQuit}`,
    );
    pop3.setChaos({});

    // ---- IMAP (imapflow) ----
    imap.setChaos({ rules: [{ command: 'FETCH', code: 'NO', times: 1 }] });
    const a = await connectImap({ port: imap.port, auth: AUTH, noStartTls: true, tracer: ctx.tracer });
    ctx.defer(() => a.close());
    await a.mailboxOpen('INBOX');
    const noErr = await failure(a.fetchOne('1', { source: true }));
    const fetched = await a.fetchOne('1', { source: true }).catch(() => false as const);
    rows.push(['IMAP (imapflow)', 'FETCH → NO [UNAVAILABLE]', errText(noErr), fetched ? `same connection, fetched again: ${fetched.source?.length ?? 0} B` : 'second fetch failed']);
    ctx.claim(
      'IMAP: a tagged NO fails that FETCH only: imapflow rejects it with the server\'s text and the connection stays usable for the next FETCH',
      noErr !== undefined && /UNAVAILABLE|chaos/.test(errText(noErr)) && a.usable && !!fetched && !!fetched.source?.length,
      `${errText(noErr)}; then ${fetched ? fetched.source?.length : 0} B`,
    );
    imap.setChaos({ rules: [{ command: 'SELECT', action: 'disconnect', times: 1 }] });
    const b = await connectImap({ port: imap.port, auth: AUTH, noStartTls: true, tracer: ctx.tracer });
    ctx.defer(() => b.close());
    const closed = new Promise<boolean>((resolve) => b.once('close', () => resolve(true)));
    const byeErr = await failure(b.mailboxOpen('INBOX'));
    const sawClose = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    let reopened: ImapFlow | undefined;
    try {
      reopened = await connectImap({ port: imap.port, auth: AUTH, noStartTls: true, tracer: ctx.tracer });
      ctx.defer(() => reopened!.close());
      await reopened.mailboxOpen('INBOX');
    } catch {
      reopened = undefined;
    }
    rows.push(['IMAP (imapflow)', 'SELECT → * BYE and close', errText(byeErr), reopened ? `'close' event, usable=${b.usable}; a new connection selects INBOX` : 'reconnect failed']);
    ctx.claim(
      'IMAP: a BYE at SELECT ends the connection: imapflow rejects the command, emits close and is no longer usable; a new connection works',
      byeErr !== undefined && sawClose && !b.usable && reopened?.mailbox !== false && reopened !== undefined,
      `${errText(byeErr)}; close event ${sawClose}`,
    );
    imap.setChaos({});

    // ---- FTP (basic-ftp) ----
    ftp.setChaos({ rules: [{ command: 'RETR', code: 451, times: 1 }] });
    const f = await connectFtp({ port: ftp.port, secure: false, tracer: ctx.tracer });
    ctx.defer(() => f.close());
    const e451 = (await failure(f.download('readme.txt'))) as { code?: number } | undefined;
    const again = await f.download('readme.txt').catch(() => null);
    rows.push(['FTP (basic-ftp)', 'RETR → 451', errText(e451), again ? `same connection, downloaded again: ${again.length} B` : 'retry failed']);
    ctx.claim(
      'FTP: a 451 on RETR is thrown by basic-ftp with its code; the control connection stays open and the retry downloads the file',
      e451?.code === 451 && !f.basic.closed && again !== null && again.toString() === WELCOME_TEXT,
      `code ${e451?.code}; retry ${again?.length ?? 0} B`,
    );
    ftp.setChaos({ rules: [{ command: 'CWD', action: 'disconnect', times: 1 }] });
    const e421 = (await failure(f.basic.cd('docs'))) as { code?: number } | undefined;
    // The server closes right after its 421: basic-ftp sees the socket end a moment later.
    for (let i = 0; i < 200 && !f.basic.closed; i++) await new Promise((r) => setTimeout(r, 10));
    const closedAfter = f.basic.closed;
    const f2 = await connectFtp({ port: ftp.port, secure: false, tracer: ctx.tracer });
    ctx.defer(() => f2.close());
    const listed = await f2.list().catch(() => []);
    rows.push(['FTP (basic-ftp)', 'CWD → 421 and close', errText(e421), `client closed=${closedAfter}; a new connection lists ${listed.length} entries`]);
    ctx.claim(
      'FTP: 421 at CWD closes the control connection; basic-ftp reports code 421, marks itself closed, and a new connection lists the folder',
      e421?.code === 421 && closedAfter && listed.some((e) => e.name === 'readme.txt'),
      `code ${e421?.code}; closed ${closedAfter}; ${listed.length} entries after reconnecting`,
    );

    // ---- Python's standard library: the exception each failure becomes ----
    ftp.setChaos({ rules: [{ command: 'RETR', code: 451, times: 1 }, { command: 'RETR', code: 550, text: 'chaos: permanently refused', times: 1 }] });
    pop3.setChaos({ rules: [{ command: 'RETR', times: 1 }] });
    imap.setChaos({ rules: [{ command: 'FETCH', code: 'NO', times: 1 }, { command: 'NOOP', action: 'disconnect', times: 1 }] });
    const py = await python(PYTHON, [String(ftp.port), String(imap.port), String(pop3.port)]);
    for (const s of [ftp, pop3, imap]) s.setChaos({});
    if (py === null) {
      ctx.note('not observed: Python\'s ftplib, poplib and imaplib (python3 is not installed).');
    } else {
      for (const [k, v] of Object.entries(py)) rows.push(['Python', k, v, '']);
      ctx.claim(
        "Python's ftplib turns the reply class into the exception: 451 → error_temp (retry later), 550 → error_perm (give up); the retry on the same connection succeeds",
        /error_temp: 451/.test(py['ftp 451'] ?? '') && /error_perm: 550/.test(py['ftp 550'] ?? '') && py['ftp retry']?.startsWith('ok') === true && py['ftp bytes'] === String(WELCOME_TEXT.length),
        `${py['ftp 451']}; ${py['ftp 550']}; retry ${py['ftp retry']}, ${py['ftp bytes']} B`,
      );
      ctx.claim(
        "Python's poplib raises error_proto on -ERR, and imaplib returns NO as a status but raises abort on BYE: the session survives the first two, not the last",
        /error_proto: .*SYS\/TEMP/.test(py['pop3 -ERR'] ?? '') && py['pop3 retry']?.startsWith('ok') === true && py['imap NO'] === 'ok NO' && /abort/.test(py['imap BYE'] ?? ''),
        `${py['pop3 -ERR']}; ${py['imap NO']}; ${py['imap BYE']}`,
        );
    }
    ctx.table('What the client did with each injected failure', ['client', 'injected', 'what the client reported', 'then'], rows);
    ctx.measure('failures injected by the servers', imap.chaos.injected + pop3.chaos.injected + ftp.chaos.injected, 'replies or disconnects');
    ctx.note('Set the same rules on a running `wirelab up` with --config wirelab.json or PUT /servers/<name>/chaos on the control API (README, "Protocol chaos").');
  },
});
