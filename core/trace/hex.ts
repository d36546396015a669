/** A classic hex dump: offset, 16 bytes in hex, the printable ASCII. At most `max` bytes are shown. */
export function hexDump(data: Uint8Array, max = 256): string[] {
  const lines: string[] = [];
  const n = Math.min(data.byteLength, max);
  for (let off = 0; off < n; off += 16) {
    const row = data.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (data.byteLength > max) lines.push(`… ${data.byteLength - max} more bytes`);
  return lines;
}

/** Printable preview of a payload for a one-line summary: control bytes escaped, cut at `max` characters. */
export function preview(data: Uint8Array, max = 48): string {
  let s = '';
  let i = 0;
  for (; i < data.byteLength && s.length < max; i++) {
    const b = data[i]!;
    if (b === 0x0a) s += '\\n';
    else if (b === 0x0d) s += '\\r';
    else if (b === 0x09) s += '\\t';
    else if (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c) s += String.fromCharCode(b);
    else s += '\\x' + b.toString(16).padStart(2, '0');
  }
  return '"' + s + (i < data.byteLength ? '…' : '') + '"';
}

/** A trace summary on one line: line breaks shown as ⏎, long text cut at 200 characters with its length. */
export function oneLine(text: string): string {
  const flat = text.replace(/\r?\n/g, '⏎');
  return flat.length > 200 ? `${flat.slice(0, 200)}… [${text.length} B]` : flat;
}
