import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { getTlsMaterial } from '../../core/tls/index.ts';

export interface Dovecot {
  imapPort: number;
  pop3Port: number;
  user: string;
  password: string;
  /** Stops the one process this helper started, by its PID, and waits for it to exit. */
  stop(): Promise<void>;
  log(): Promise<string>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`dovecot did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * Starts Debian's Dovecot (dovecot-imapd, dovecot-pop3d) from a config written into `dir`: IMAP and POP3 on
 * 127.0.0.1 high ports, STARTTLS / STLS with wirelab's localhost certificate, one passwd-file user, Maildir under
 * `dir`. Runs in the foreground (-F) so the PID we hold is the master's.
 */
export async function startDovecot(dir: string): Promise<Dovecot> {
  await chmod(dir, 0o755);
  const [imapPort, pop3Port] = [await freePort(), await freePort()];
  const tlsm = await getTlsMaterial();
  const user = 'tester';
  const password = 'dovecot-pass';
  // Dovecot refuses to run mail processes as root: as root, mail belongs to the package's own `dovecot` user.
  let uid = process.getuid?.() ?? 0;
  let gid = process.getgid?.() ?? 0;
  // Not root: Dovecot cannot switch users, so every one of its processes runs as us.
  const me = spawnSync('id', ['-un']).stdout.toString().trim();
  const myGroup = spawnSync('id', ['-gn']).stdout.toString().trim();
  const [loginUser, internalUser] = uid === 0 ? ['dovenull', 'dovecot'] : [me, me];
  const internalGroup = uid === 0 ? 'dovecot' : myGroup;
  // Without root there is no chroot either.
  const noChroot = uid === 0 ? '' : '  chroot =\n';
  if (uid === 0) {
    uid = Number(spawnSync('id', ['-u', 'dovecot']).stdout.toString().trim());
    gid = Number(spawnSync('id', ['-g', 'dovecot']).stdout.toString().trim());
  }
  for (const d of ['mail', 'home']) {
    await mkdir(join(dir, d), { recursive: true });
    await chown(join(dir, d), uid, gid);
  }
  await writeFile(join(dir, 'passwd'), `${user}:{PLAIN}${password}::::::\n`);
  const conf = `
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <${tlsm.certPath}
ssl_key = <${tlsm.keyPath}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:${dir}/mail/%u
first_valid_uid = ${uid}
last_valid_uid = ${uid}
default_login_user = ${loginUser}
default_internal_user = ${internalUser}
default_internal_group = ${internalGroup}
pop3_uidl_format = %08Xu%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${uid} gid=${gid} home=${dir}/home/%u
}
${uid === 0 ? '' : 'service anvil {\n  chroot =\n}\n'}service imap-login {
${noChroot}  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
${noChroot}  inet_listener pop3 {
    address = 127.0.0.1
    port = ${pop3Port}
  }
  inet_listener pop3s {
    port = 0
  }
}
`;
  const confPath = join(dir, 'dovecot.conf');
  await writeFile(confPath, conf);
  const child: ChildProcess = spawn('dovecot', ['-F', '-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '');
  try {
    await Promise.race([
      Promise.all([waitForPort(imapPort, Date.now() + 10_000), waitForPort(pop3Port, Date.now() + 10_000)]),
      exited.then(() => Promise.reject(new Error(`dovecot exited: ${stderr}`))),
    ]);
  } catch (err) {
    if (child.exitCode === null) child.kill('SIGTERM');
    throw new Error(`${(err as Error).message}\n${await log()}`);
  }
  return {
    imapPort,
    pop3Port,
    user,
    password,
    log,
    async stop() {
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
}
