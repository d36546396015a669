import net from 'node:net';

/**
 * A raw line conversation for bad-input tests: sends each line, waits until the reply stops growing (or the server
 * closes), returns the greeting and each reply as text.
 */
export async function lineTalk(port: number, lines: Array<string | Buffer>, settleMs = 60): Promise<{ replies: string[]; closed: boolean }> {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  let closed = false;
  sock.on('data', (d) => (buf += d.toString('latin1')));
  sock.on('error', () => undefined);
  sock.on('close', () => (closed = true));
  const settle = async (): Promise<string> => {
    let last = -1;
    for (let i = 0; i < 100 && (buf.length === 0 || buf.length !== last); i++) {
      last = buf.length;
      await new Promise((r) => setTimeout(r, settleMs));
      if (closed) break;
    }
    const r = buf;
    buf = '';
    return r;
  };
  const replies = [await settle()];
  for (const l of lines) {
    if (closed) break;
    sock.write(typeof l === 'string' ? l + '\r\n' : l);
    replies.push(await settle());
  }
  sock.destroy();
  return { replies, closed };
}
