import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compactSet, parseSequenceSet } from '../../../servers/imap/sequence.ts';
import { sectionText, parseMime, bodyStructure, envelope } from '../../../servers/imap/mime.ts';

test('sequence sets: ranges, *, reversed ranges, clamping, empty mailbox, garbage', () => {
  assert.deepEqual([...parseSequenceSet('1,3:5', 10)!], [1, 3, 4, 5]);
  assert.deepEqual([...parseSequenceSet('8:*', 10)!], [8, 9, 10]);
  assert.deepEqual([...parseSequenceSet('*:9', 10)!], [9, 10]);
  assert.equal(parseSequenceSet('1:4294967295', 3)!.size, 3);
  assert.deepEqual([...parseSequenceSet('1:*', 0)!], []);
  for (const bad of ['', '0', '1:0', 'a', '1,,2', '1:2:3', '-1']) assert.equal(parseSequenceSet(bad, 10), null, bad);
  assert.equal(compactSet([5, 1, 2, 3, 7]), '1:3,5,7');
});

test('MIME: sections of a nested message, header fields, partial-safe byte counts', () => {
  const inner = 'From: x@y\r\nSubject: inner\r\n\r\ninner body\r\n';
  const raw =
    'Subject: outer\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nfirst\r\n' +
    `--zz\r\nContent-Type: message/rfc822\r\n\r\n${inner}--zz--\r\n`;
  const root = parseMime(raw);
  assert.equal(sectionText(raw, '1', root), 'first');
  assert.equal(sectionText(raw, '2.HEADER', root), 'From: x@y\r\nSubject: inner\r\n\r\n');
  assert.equal(sectionText(raw, '2.TEXT', root), 'inner body', 'the CRLF before a boundary belongs to the boundary');
  assert.equal(sectionText(raw, '2.1', root), 'inner body');
  assert.equal(sectionText(raw, 'HEADER.FIELDS (SUBJECT)', root), 'Subject: outer\r\n\r\n');
  assert.equal(sectionText(raw, 'HEADER.FIELDS.NOT (SUBJECT)', root), 'Content-Type: multipart/mixed; boundary=zz\r\n\r\n');
  assert.equal(sectionText(raw, '1.MIME', root), 'Content-Type: text/plain\r\n\r\n');
  assert.equal(sectionText(raw, '9', root), null);
  assert.match(bodyStructure(root, true), /^\(\("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 1 NIL NIL NIL NIL\)\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" \d+ \(/);
  assert.match(envelope(root), /^\(NIL "outer" NIL NIL NIL NIL NIL NIL NIL NIL\)$/);
});
