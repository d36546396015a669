import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes, HttpError, InvalidOptionError, WirelabError } from '../../core/errors.ts';
import { checkInt, rejectRenamed } from '../../core/options.ts';
import { FtpError, PathRefused } from '../../servers/ftp/index.ts';
import { SmtpReplyError } from '../../servers/smtp/index.ts';
import { UsageError } from '../../bin/cli/args.ts';

test('every error class is a WirelabError with a stable code and the protocol status in its own field', () => {
  const cases: [Error, string][] = [
    [new HttpError(404, 'x'), ErrorCodes.HTTP_STATUS],
    [new PathRefused('outside your root'), ErrorCodes.FTP_PATH_REFUSED],
    [new SmtpReplyError('x', 421), ErrorCodes.SMTP_REFUSED],
    [new UsageError('x'), ErrorCodes.USAGE],
    [new InvalidOptionError('port', 'a port', -1), ErrorCodes.INVALID_OPTION],
  ];
  for (const [err, code] of cases) {
    assert.ok(err instanceof WirelabError, err.name);
    assert.ok(err instanceof Error, err.name);
    assert.equal((err as WirelabError).code, code, err.name);
  }
  assert.equal(new HttpError(404, 'x').status, 404);
  const refused = new PathRefused('outside your root');
  assert.ok(refused instanceof FtpError);
  assert.equal(refused.reply, 550);
  assert.equal(new SmtpReplyError('x', 421).responseCode, 421);
});

test('InvalidOptionError is a TypeError and a WirelabError; a subclass check stays a prototype check', () => {
  const err = (() => {
    try {
      checkInt('maxLineLength', 0, 16, 1024);
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof TypeError);
  assert.ok(err instanceof WirelabError);
  assert.ok(err instanceof InvalidOptionError);
  assert.equal((err as InvalidOptionError).option, 'maxLineLength');
  // The brand makes WirelabError itself recognise it; a subclass such as HttpError does not.
  assert.ok(!(err instanceof HttpError));
  assert.ok(!(new Error('plain') instanceof WirelabError));
  assert.ok(!(new TypeError('plain') instanceof WirelabError));
});

test('an option passed under its old name throws a TypeError naming the new one', () => {
  for (const [old, now] of [['maxClients', 'maxConnections'], ['socketTimeoutMs', 'idleTimeoutMs'], ['maxBadCommands', 'maxUnknownCommands'], ['maxLoginFailures', 'maxAuthFailures'], ['loginFailDelayMs', 'authFailureDelayMs']]) {
    assert.throws(() => rejectRenamed({ [old!]: 5 }), (e: InvalidOptionError) => e instanceof TypeError && e.code === ErrorCodes.INVALID_OPTION && e.option === old && e.renamedTo === now);
  }
  rejectRenamed({ maxConnections: 5, maxClients: undefined });
});
