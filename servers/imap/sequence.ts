/**
 * Sequence sets (RFC 3501 9: `1,3:5,7:*`). `max` is what `*` stands for: the highest sequence number, or the highest
 * UID for UID commands. Returns null for a malformed set.
 */
export function parseSequenceSet(text: string, max: number): Set<number> | null {
  const out = new Set<number>();
  if (!/^(\d+|\*)(:(\d+|\*))?(,(\d+|\*)(:(\d+|\*))?)*$/.test(text)) return null;
  if (/(^|[,:])0+($|[,:])/.test(text)) return null;
  // In an empty mailbox `*` stands for nothing: `UID FETCH 1:*` finds no message rather than failing.
  if (max === 0) return new Set(text.includes('*') ? [] : text.split(/[,:]/).map(Number));
  for (const range of text.split(',')) {
    const [a, b] = range.split(':') as [string, string | undefined];
    const lo = a === '*' ? max : Number(a);
    const hi = b === undefined ? lo : b === '*' ? max : Number(b);
    if (lo === 0 || hi === 0) return null;
    const [from, to] = lo <= hi ? [lo, hi] : [hi, lo];
    // Clamp to what exists, so `1:4294967295` costs nothing.
    for (let n = from; n <= Math.min(to, max); n++) out.add(n);
    if (from > max && b === undefined) out.add(from);
  }
  return out;
}

/** `[1,2,3,5]` → `1:3,5` (for COPYUID and APPENDUID). */
export function compactSet(nums: number[]): string {
  const sorted = [...nums].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
