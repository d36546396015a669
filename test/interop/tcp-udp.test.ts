import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requirePeer } from '../helpers/peers.ts';
import { startUp, type UpProcess } from '../helpers/up.ts';

const run = promisify(execFile);
const sh = (cmd: string, timeout = 10_000) => run('bash', ['-c', cmd], { timeout });

// The endpoints of a real `wirelab up`, reached by programs nobody here wrote, with the commands the table prints.
let up: UpProcess;
test.before(async () => {
  up = await startUp();
});
test.after(async () => {
  await up.stop();
});
const endpoint = (name: string) => up.endpoints.find((e) => e.name === name)!;

test('nc (netcat-openbsd) talks to TCP echo and UDP echo', async (t) => {
  if (!requirePeer(t, 'nc', 'netcat-openbsd')) return;
  const tcp = endpoint('tcp-echo');
  assert.equal(tcp.try, `nc 127.0.0.1 ${tcp.port}`);
  const { stdout } = await sh(`printf 'hello wirelab\\n' | nc -N 127.0.0.1 ${tcp.port}`);
  assert.equal(stdout, 'hello wirelab\n');
  const udp = endpoint('udp-echo');
  const u = await sh(`printf 'ping' | nc -u -w 1 127.0.0.1 ${udp.port}`);
  assert.equal(u.stdout, 'ping');
});

test('socat talks to TCP echo, UDP echo and discard', async (t) => {
  if (!requirePeer(t, 'socat', 'socat')) return;
  const { stdout } = await sh(`printf 'via socat\\n' | socat -t 2 - TCP:127.0.0.1:${endpoint('tcp-echo').port}`);
  assert.equal(stdout, 'via socat\n');
  const u = await sh(`printf 'dgram' | socat -t 1 - UDP:127.0.0.1:${endpoint('udp-echo').port}`);
  assert.equal(u.stdout, 'dgram');
  const d = await sh(`head -c 1000000 /dev/zero | socat -u - TCP:127.0.0.1:${endpoint('tcp-discard').port} && echo sent`);
  assert.equal(d.stdout, 'sent\n');
});

test("Python's socket module talks to echo, chargen (the printed command) and UDP echo", async (t) => {
  if (!requirePeer(t, 'python3', 'python3')) return;
  const tcp = endpoint('tcp-echo').port;
  const { stdout } = await run('python3', ['-c', `import socket; s=socket.create_connection(('127.0.0.1',${tcp})); s.sendall(b'py\\n'); print(s.recv(99).decode(), end='')`]);
  assert.equal(stdout, 'py\n');
  const chargen = endpoint('tcp-chargen');
  const c = await sh(chargen.try);
  assert.match(c.stdout, /^ !"#\$%&'\(\)\*\+,-\.\/0123/);
  const udp = endpoint('udp-echo').port;
  const u = await run('python3', ['-c', `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(b'x'*1000, ('127.0.0.1',${udp})); d,_=s.recvfrom(70000); print(len(d))`]);
  assert.equal(u.stdout.trim(), '1000');
});

test('the discard command the table prints works as printed', async (t) => {
  if (!requirePeer(t, 'nc', 'netcat-openbsd')) return;
  await sh(endpoint('tcp-discard').try, 20_000);
});
