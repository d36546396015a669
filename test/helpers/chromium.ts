import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { hasCommand } from './peers.ts';

/**
 * Debian's chromium through playwright-core (never a downloaded browser), with the flags this machine needs
 * (CHROMIUM_FLAGS: no background networking, no sandbox as root). WebRTC on loopback also needs
 * --allow-loopback-in-peer-connection, and real IPs in candidates instead of mDNS names (no camera permission here).
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const CHROMIUM_WEBRTC_FLAGS = [...CHROMIUM_FLAGS, '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'];

/**
 * A headless Chromium (a new empty profile of its own per launch), or undefined when Debian's chromium is missing: the
 * test then calls requirePeer, which skips it (or fails it under CI=true). `args`: more flags (chromiumTrusting).
 */
export async function launchChromium(args: string[] = []): Promise<Browser | undefined> {
  if (!hasCommand('chromium')) return undefined;
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_FLAGS, ...args], timeout: 30_000 });
}

/**
 * The flag that makes Chromium trust one certificate (by its public key's SHA-256, as HPKP pins it): wirelab's local
 * localhost certificate, say. Every other certificate is still verified (no --ignore-certificate-errors).
 */
export function chromiumTrusting(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`;
}

/** A headless Chromium with a profile folder of its own (launchPersistentContext), removed by close(). */
export async function launchChromiumForWebRtc(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'wirelab-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', args: CHROMIUM_WEBRTC_FLAGS, timeout: 30_000 });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
