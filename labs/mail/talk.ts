import net from 'node:net';
import tls from 'node:tls';
import { tlsClientOptions } from '../../core/tls/index.ts';
import type { FlightTap } from '../_flights.ts';

/**
 * A raw line conversation that counts its round trips: waiting for the greeting is one (the server speaks once the
 * connection is up), each command awaited is one, and a TLS handshake counts the server flights a FlightTap saw
 * cross the wire (one for TLS 1.3, two for a full TLS 1.2 handshake). `steps` records what was seen, for the
 * handshakes table.
 */
export class CountingTalk {
  roundTrips = 0;
  /** Server flights of the TLS handshake, as counted on the wire, and the version negotiated (after startTls). */
  tls: { flights: number; version: string } | undefined;
  readonly steps: string[] = [];
  /** How long the greeting took to arrive after the connection was up. */
  greetingMs = 0;
  readonly #openedAt = performance.now();
  #socket: net.Socket;
  #buf = '';
  #wake: (() => void) | null = null;
  readonly #tap: FlightTap | undefined;

  private constructor(socket: net.Socket, tap: FlightTap | undefined) {
    this.#socket = socket;
    this.#tap = tap;
    this.#listen(socket);
  }

  /** Connects to `port`, or through `tap` (a relay in front of that server) when TLS round trips are to be counted. */
  static async open(port: number, tap?: FlightTap): Promise<CountingTalk> {
    const socket = net.connect(tap?.port ?? port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new CountingTalk(socket, tap);
  }

  #listen(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      this.#wake?.();
    });
  }

  /** Waits until the text received matches `done`; returns the text and empties the buffer. */
  async #until(done: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!done.test(this.#buf)) {
      if (Date.now() > deadline) throw new Error(`no reply matching ${done} (got ${JSON.stringify(this.#buf.slice(0, 200))})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    const out = this.#buf;
    this.#buf = '';
    return out;
  }

  async greeting(done: RegExp, label: string): Promise<string> {
    const text = await this.#until(done);
    this.greetingMs = Math.round(performance.now() - this.#openedAt);
    this.roundTrips++;
    this.steps.push(`${label} ←`);
    return text;
  }

  /** Sends one command and waits for its final reply. `shown` replaces the line in `steps` (passwords). */
  async command(line: string, done: RegExp, shown = line.split(' ')[0]!): Promise<string> {
    this.#socket.write(`${line}\r\n`);
    const text = await this.#until(done);
    this.roundTrips++;
    const lines = text.trimEnd().split('\r\n');
    const first = lines[0]!.split(' ')[0]!;
    const last = lines.at(-1)!.split(' ');
    // POP3 status first, SMTP code on the last line, IMAP status after the tag.
    const status = first === '+OK' || first === '-ERR' ? first : /^\d{3}$/.test(last[0]!) ? last[0]! : (last[1] ?? '?');
    this.steps.push(`${shown} → ${status}`);
    return text;
  }

  /** Continues in TLS on the same connection (after STARTTLS / STLS was accepted). */
  async startTls(): Promise<string> {
    if (!this.#tap) throw new Error('CountingTalk.startTls needs a FlightTap to count the handshake');
    const mark = this.#tap.mark();
    const secure = tls.connect({ socket: this.#socket, ...(await tlsClientOptions()) });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    const version = secure.getProtocol() ?? '?';
    const flights = this.#tap.tlsServerFlightsSince(mark);
    this.roundTrips += flights;
    this.tls = { flights, version };
    this.steps.push(`${version} handshake (${flights} server flight${flights === 1 ? '' : 's'})`);
    this.#socket.removeAllListeners('data');
    this.#socket = secure;
    this.#listen(secure);
    return version;
  }

  close(): void {
    this.#socket.destroy();
  }
}
