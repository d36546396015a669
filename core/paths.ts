import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where wirelab keeps what it makes once (certificates, later mail and FTP roots):
 * $WIRELAB_DATA_DIR, else $XDG_DATA_HOME/wirelab, else ~/.local/share/wirelab.
 */
export function dataDir(): string {
  if (process.env.WIRELAB_DATA_DIR) return process.env.WIRELAB_DATA_DIR;
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'wirelab');
}
