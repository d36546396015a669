import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDecoder, encodeFrame, type Framing } from '../../core/framing.ts';

const messages = ['hello', '', 'a longer message with spaces', 'x'.repeat(300), 'last'];

/** Feeds `bytes` cut at every possible single split point, and one byte at a time. */
function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[bytes]];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push(Array.from(bytes, (b) => Buffer.from([b])));
  return out;
}

for (const framing of ['line', 'length'] as Framing[]) {
  test(`${framing} framing: the same messages come out however the stream is cut`, () => {
    const wire = Buffer.concat(messages.map((m) => encodeFrame(framing, m)));
    for (const chunks of splits(wire)) {
      const d = createDecoder(framing);
      const got = chunks.flatMap((c) => d.push(c)).map(String);
      assert.deepEqual(got, messages);
      assert.equal(d.pending, 0);
    }
  });
}

test('line framing drops a CR before the LF and caps line length', () => {
  const d = createDecoder('line', { maxLineLength: 5 });
  assert.deepEqual(d.push(Buffer.from('abc\r\n12345\n')).map(String), ['abc', '12345']);
  assert.throws(() => d.push(Buffer.from('123456\n')), { code: 'WL_ERR_LINE_TOO_LONG' });
  const d2 = createDecoder('line', { maxLineLength: 5 });
  assert.throws(() => d2.push(Buffer.from('1234567')), { code: 'WL_ERR_LINE_TOO_LONG' }, 'no newline yet: still refused');
});

test('length framing refuses a header past maxFrameLength before buffering the body', () => {
  const d = createDecoder('length', { maxFrameLength: 10 });
  const head = Buffer.alloc(4);
  head.writeUInt32BE(11);
  assert.throws(() => d.push(head), { code: 'WL_ERR_FRAME_TOO_LONG' });
});
