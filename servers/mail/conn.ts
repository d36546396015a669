/** Counters every mail server keeps, so a lab can compare what reading mail costs over POP3 and over IMAP. */
export interface MailServerStats {
  connections: number;
  commands: number;
  bytesIn: number;
  bytesOut: number;
}

export function newStats(): MailServerStats {
  return { connections: 0, commands: 0, bytesIn: 0, bytesOut: 0 };
}
