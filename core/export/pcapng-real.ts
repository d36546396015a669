/**
 * `--pcap F --pcap-real`: the real packets instead of synthesized ones, where core/capture can capture (Linux, root,
 * tcpdump). tcpdump runs on `lo` while the command runs (whole frames, every TCP and UDP packet of the interface);
 * when the tracer closes, the frames of the conversations the trace saw (their 4-tuples) are written as pcapng, other
 * loopback traffic left out. Real means real: TLS is ciphertext (give Wireshark the servers' `keylogFile`), segments
 * are as the kernel cut them (loopback MSS ~65 KB), retransmissions and window updates are in. Where capturing is not
 * possible, or tcpdump fails, the synthesized file (pcapng.ts) is written instead and its comment says why.
 */
import { writeFile } from 'node:fs/promises';
import { CAPTURE_DEFAULTS, captureAvailable, pcapRecords, startCapture, type Capture } from '../capture/index.ts';
import { ErrorCodes, WirelabError } from '../errors.ts';
import type { TraceEvent, TraceSink } from '../trace/types.ts';
import { enhancedPacket, interfaceDescription, sectionHeader } from './pcapng-blocks.ts';
import { PcapngSink, type PcapngSinkOptions, type PcapngSummary } from './pcapng.ts';

const LIMITED = 'The capture file reached its size limit and tcpdump was stopped there: later packets are not in this file';

/** What a real or synthesized `--pcap` wrote. */
export interface PcapngWritten extends PcapngSummary {
  /** True: tcpdump's packets; false: synthesized from the trace (`note` says why when a real one was asked). */
  real: boolean;
  note?: string;
}

export interface RealPcapngOptions extends Omit<PcapngSinkOptions, 'onWritten'> {
  /** Called with what was written when the sink closes. */
  onWritten?: (summary: PcapngWritten, path: string) => void;
  /** The interface tcpdump listens on. Default `lo`. */
  iface?: string;
  /**
   * tcpdump's file is stopped at this size (CAPTURE_DEFAULTS.maxBytes, 256 MiB): later packets are left out and the
   * file's comment and `note` say so.
   */
  maxCaptureBytes?: number;
}

/**
 * A sink that captures for real while the tracer lives, and keeps the synthesized export's events as the fallback.
 * `ready` resolves once tcpdump listens (or failed: then the fallback is written); await it before traffic starts.
 */
export class RealPcapngSink implements TraceSink {
  // The fallback needs the payloads; a real capture only the conversations.
  readonly wantsWire = true;
  readonly ready: Promise<void>;
  readonly #path: string;
  readonly #o: RealPcapngOptions;
  readonly #fallback: PcapngSink;
  /** The fallback's options, kept by reference: the reason is added to its comment before it writes. */
  readonly #fallbackOptions: PcapngSinkOptions;
  readonly #convs = new Set<string>();
  #capture: Capture | undefined;
  #failed: string | undefined;
  #fallbackSummary: PcapngSummary | undefined;

  constructor(path: string, options: RealPcapngOptions = {}) {
    this.#path = path;
    this.#o = options;
    this.#fallbackOptions = { ...options, onWritten: (s) => (this.#fallbackSummary = s) };
    this.#fallback = new PcapngSink(path, this.#fallbackOptions);
    const available = captureAvailable();
    if (!available.ok) {
      this.#failed = available.reason;
      this.ready = Promise.resolve();
      return;
    }
    this.ready = startCapture('tcp or udp', { iface: options.iface ?? 'lo', snaplen: 0, ...(options.maxCaptureBytes === undefined ? {} : { maxBytes: options.maxCaptureBytes }) }).then(
      (c) => {
        this.#capture = c;
      },
      (err: Error) => {
        this.#failed = `tcpdump did not start: ${err.message}`;
      },
    );
  }

  write(e: TraceEvent): void {
    this.#fallback.write(e);
    if (e.conv !== undefined && e.conv.length < 120) this.#convs.add(e.conv);
  }

  async close(): Promise<void> {
    await this.ready;
    let note = this.#failed;
    if (this.#capture) {
      const raw = await this.#capture.stopRaw().catch((err: Error) => {
        note = `tcpdump failed: ${err.message}`;
        return undefined;
      });
      const written = raw ? await this.#writeReal(raw) : undefined;
      if (written) return this.#o.onWritten?.(written, this.#path);
      note ??= 'tcpdump saw none of the trace\'s conversations';
    }
    const why = `A real capture was asked (--pcap-real) but not made: ${note}; this file is synthesized.`;
    this.#fallbackOptions.comment = [this.#o.comment, why].filter(Boolean).join(' ');
    await this.#fallback.close();
    this.#o.onWritten?.({ ...this.#fallbackSummary!, real: false, note: note! }, this.#path);
  }

  /** The captured frames of the trace's conversations as pcapng; undefined when none matched. */
  async #writeReal(raw: Buffer): Promise<PcapngWritten | undefined> {
    const limited = this.#capture?.limited === true;
    const { linktype, snaplen, records } = pcapRecords(raw);
    // Both directions of each conversation the trace saw, `tcp:a:p>b:p` / `udp:...`.
    const wanted = new Map<string, string>();
    for (const conv of this.#convs) {
      const [transport, ends] = [conv.slice(0, 3), conv.slice(4)];
      const [c, s] = ends.split('>');
      if (!c || !s) continue;
      wanted.set(`${c}>${s}`, transport);
      wanted.set(`${s}>${c}`, transport);
    }
    const kept = records.filter((r) => r.src !== undefined && wanted.has(`${r.src}>${r.dst}`));
    if (kept.length === 0) return undefined;
    const seen = new Map<string, string>();
    for (const r of kept) {
      const key = [r.src, r.dst].sort().join('|');
      seen.set(key, wanted.get(`${r.src}>${r.dst}`)!);
    }
    const tcp = [...seen.values()].filter((t) => t === 'tcp').length;
    const comment = [
      `Captured by tcpdump on ${this.#o.iface ?? 'lo'} while wirelab ran (--pcap-real): real packets, kept to the ${seen.size} conversation(s) the trace saw, other loopback traffic left out.`,
      limited ? `${LIMITED} (maxCaptureBytes=${this.#o.maxCaptureBytes ?? CAPTURE_DEFAULTS.maxBytes}).` : '',
      'TLS is ciphertext here: give Wireshark the servers\' keylogFile (SSLKEYLOGFILE format) to read it.',
      this.#o.comment ?? '',
    ]
      .filter(Boolean)
      .join(' ');
    const file = Buffer.concat([sectionHeader(comment, 'wirelab'), interfaceDescription(this.#o.iface ?? 'lo', linktype, snaplen || 262_144), ...kept.map((r) => enhancedPacket(r.tsUs, r.frame, r.originalLength))]);
    try {
      await writeFile(this.#path, file);
    } catch (err) {
      throw new WirelabError(ErrorCodes.TRACE_FILE, `cannot write ${this.#path}: ${(err as Error).message}`, { cause: err });
    }
    return { real: true, packets: kept.length, tcpConversations: tcp, udpConversations: seen.size - tcp, tlsConversations: 0, truncatedPayloads: 0, skipped: 0, ...(limited ? { note: LIMITED } : {}) };
  }
}
