import dgram from 'node:dgram';
import net from 'node:net';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';

/**
 * Just enough DNS (RFC 1035) to ask one question over UDP or TCP and read the answer's header and TXT records: the lab
 * looks at the TC (truncated) bit and the answer count, which a resolver library hides.
 */
export const TYPE_TXT = 16;
const TYPE_OPT = 41;
const FLAG_TC = 0x0200;

export interface DnsAnswer {
  id: number;
  /** The answer was cut to fit (TC bit): ask again over TCP. */
  truncated: boolean;
  rcode: number;
  answerCount: number;
  /** The TXT records' text, one string per record (its character-strings joined). */
  txt: string[];
  /** The message's size in bytes, without TCP's 2-byte length prefix. */
  bytes: number;
}

/** A query for `name`; with `ednsUdpSize`, an OPT record (EDNS0, RFC 6891) saying how large a UDP answer may be. */
export function encodeQuery(id: number, name: string, type: number, ednsUdpSize?: number): Buffer {
  const labels = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(ednsUdpSize ? 1 : 0, 10);
  const question = Buffer.concat([...labels, Buffer.from([0]), Buffer.from([0, type, 0, 1])]);
  const parts = [header, question];
  // OPT: root name, type 41, class = UDP payload size, TTL 0 (extended rcode, version, flags), no data.
  if (ednsUdpSize) parts.push(Buffer.from([0, 0, TYPE_OPT, ednsUdpSize >> 8, ednsUdpSize & 0xff, 0, 0, 0, 0, 0, 0]));
  return Buffer.concat(parts);
}

function skipName(buf: Buffer, off: number): number {
  for (let hops = 0; hops < 128; hops++) {
    const len = buf[off];
    if (len === undefined) throw new WirelabError(ErrorCodes.DNS_MALFORMED, 'DNS answer: a name runs past the end');
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2; // a compression pointer ends the name here
    off += 1 + len;
  }
  throw new WirelabError(ErrorCodes.DNS_MALFORMED, 'DNS answer: a name with too many labels');
}

export function decodeAnswer(buf: Buffer): DnsAnswer {
  if (buf.length < 12) throw new WirelabError(ErrorCodes.DNS_MALFORMED, `DNS answer of ${buf.length} bytes: shorter than its header`);
  const flags = buf.readUInt16BE(2);
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
  const txt: string[] = [];
  for (let i = 0; i < an && off < buf.length; i++) {
    off = skipName(buf, off);
    const type = buf.readUInt16BE(off);
    const rdlen = buf.readUInt16BE(off + 8);
    const rdata = buf.subarray(off + 10, off + 10 + rdlen);
    off += 10 + rdlen;
    if (type !== TYPE_TXT) continue;
    let s = '';
    for (let j = 0; j < rdata.length; ) {
      const n = rdata[j]!;
      s += rdata.toString('latin1', j + 1, j + 1 + n);
      j += 1 + n;
    }
    txt.push(s);
  }
  return { id: buf.readUInt16BE(0), truncated: (flags & FLAG_TC) !== 0, rcode: flags & 0x0f, answerCount: an, txt, bytes: buf.length };
}

/** One question over UDP from a fresh socket; the first answer with the query's id, or WL_ERR_TIMEOUT. */
export async function queryUdp(o: { host: string; port: number; name: string; type?: number; ednsUdpSize?: number; timeoutMs?: number }): Promise<DnsAnswer> {
  const id = Math.floor(Math.random() * 0xffff);
  const socket = dgram.createSocket('udp4');
  try {
    return await new Promise<DnsAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new WirelabError(ErrorCodes.TIMEOUT, `no DNS answer over UDP from ${o.host}:${o.port} in ${o.timeoutMs ?? 3000} ms`)), o.timeoutMs ?? 3000);
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('message', (m) => {
        try {
          const a = decodeAnswer(m);
          if (a.id !== id) return;
          clearTimeout(timer);
          resolve(a);
        } catch (err) {
          clearTimeout(timer);
          reject(err);
        }
      });
      socket.send(encodeQuery(id, o.name, o.type ?? TYPE_TXT, o.ednsUdpSize), o.port, o.host);
    });
  } finally {
    socket.close();
  }
}

/** One question over TCP: each message carries a 2-byte length prefix (RFC 1035 4.2.2). */
export async function queryTcp(o: { host: string; port: number; name: string; type?: number; timeoutMs?: number }): Promise<DnsAnswer> {
  const id = Math.floor(Math.random() * 0xffff);
  const q = encodeQuery(id, o.name, o.type ?? TYPE_TXT);
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(q.length);
  const socket = net.connect(o.port, o.host);
  try {
    return await new Promise<DnsAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new WirelabError(ErrorCodes.TIMEOUT, `no DNS answer over TCP from ${o.host}:${o.port} in ${o.timeoutMs ?? 3000} ms`)), o.timeoutMs ?? 3000);
      let got = Buffer.alloc(0);
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length < 2 || got.length < 2 + got.readUInt16BE(0)) return;
        clearTimeout(timer);
        try {
          resolve(decodeAnswer(got.subarray(2, 2 + got.readUInt16BE(0))));
        } catch (err) {
          reject(err);
        }
      });
      socket.once('connect', () => socket.write(Buffer.concat([prefix, q])));
    });
  } finally {
    socket.destroy();
  }
}
