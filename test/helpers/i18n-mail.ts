/**
 * Messages with non-ASCII text in every form mail carries it, for SEARCH tests against wirelab's IMAP server and
 * Dovecot alike. `has` says which of the two words each message holds, as a reader sees it (in the subject, or the
 * body), so the expected result of a search is computed from the table rather than written twice.
 */

const b64 = (s: string, charset: BufferEncoding = 'utf8'): string => Buffer.from(s, charset).toString('base64');

const head = (subject: string, extra = ''): string =>
  `From: Ann <ann@localhost>\r\nTo: Demo <demo@localhost>\r\nSubject: ${subject}\r\nDate: Sun, 22 Nov 2026 03:00:00 +0000\r\nMIME-Version: 1.0\r\n${extra}`;

export interface I18nMessage {
  label: string;
  raw: Buffer;
  /** Where "Köln" is (body) and where "Grüße" is (subject), decoded. */
  kolnInBody: boolean;
  grusseInSubject: boolean;
}

export const I18N_MESSAGES: I18nMessage[] = [
  {
    label: '8-bit UTF-8 body',
    raw: Buffer.from(`${head('plain utf-8')}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nWir fahren nach Köln.\r\n`, 'utf8'),
    kolnInBody: true,
    grusseInSubject: false,
  },
  {
    label: 'base64 UTF-8 body',
    raw: Buffer.from(`${head('base64 body')}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64('Treffen in Köln am Rhein.\r\n')}\r\n`),
    kolnInBody: true,
    grusseInSubject: false,
  },
  {
    label: 'quoted-printable ISO-8859-1 body',
    raw: Buffer.from(`${head('qp latin-1')}Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nAnkunft K=F6ln Hbf, Gleis 5, mit einer sehr langen Zeile, die weich umbrochen=\r\n wird.\r\n`),
    kolnInBody: true,
    grusseInSubject: false,
  },
  {
    label: 'B-encoded UTF-8 subject',
    raw: Buffer.from(`${head(`=?UTF-8?B?${b64('Grüße aus dem Süden')}?=`)}Content-Type: text/plain; charset=us-ascii\r\n\r\nNothing special here.\r\n`),
    kolnInBody: false,
    grusseInSubject: true,
  },
  {
    label: 'Q-encoded ISO-8859-1 subject split over two words',
    raw: Buffer.from(`${head('=?ISO-8859-1?Q?Viele_Gr=FC?=\r\n =?ISO-8859-1?Q?=DFe?=')}Content-Type: text/plain\r\n\r\nCiao.\r\n`),
    kolnInBody: false,
    grusseInSubject: true,
  },
  {
    label: 'multipart: base64 ISO-8859-1 text part, attachment',
    raw: Buffer.from(
      `${head('=?utf-8?q?GR=C3=9CSSE?= und Grüße')}Content-Type: multipart/mixed; boundary="xx"\r\n\r\n--xx\r\nContent-Type: text/plain; charset="ISO-8859-1"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64('Gruß aus KÖLN\r\n', 'latin1')}\r\n--xx\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64('\x00\x01binary')}\r\n--xx--\r\n`,
      'utf8',
    ),
    kolnInBody: true,
    grusseInSubject: true,
  },
  {
    label: 'ASCII only (control)',
    raw: Buffer.from(`${head('Koeln and Gruesse')}Content-Type: text/plain\r\n\r\nKoln without the umlaut; Grusse too.\r\n`),
    kolnInBody: false,
    grusseInSubject: false,
  },
];

/** 1-based sequence numbers of the messages (appended in table order) for which `pick` holds. */
export function expectedSeqs(pick: (m: I18nMessage) => boolean): number[] {
  return I18N_MESSAGES.flatMap((m, i) => (pick(m) ? [i + 1] : []));
}
