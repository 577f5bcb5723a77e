import { AppError } from '../errors';
import { sha256Fingerprint } from '../hosts';
import type { ScannedHostKey } from './hostKeys';
import type { Prompter } from './prompt';

export interface PinInput {
  name: string;
  address: string;
  port: number;
  /** what the host presents now; undefined when it could not be reached */
  scanned: ScannedHostKey | undefined;
  /** the pin already in the hosts file */
  pinned: string | undefined;
  /** --host-key ADDRESS=SHA256:… */
  expected: string | undefined;
}

export type PinDecision =
  | { kind: 'keep'; hostKey: string; note: string }
  | { kind: 'pin'; hostKey: string; note: string }
  | { kind: 'skip'; note: string };

/** The SHA256 fingerprint a pin stands for (a `SHA256:` pin, a public key line or a bare blob). */
export function pinFingerprint(pin: string): string | undefined {
  const p = pin.trim();
  if (/^SHA256:/i.test(p)) return `SHA256:${p.slice(7).replace(/=+$/, '')}`;
  const blob = p.split(/\s+/).find((f) => /^AAAA[A-Za-z0-9+/]+=*$/.test(f));
  return blob ? sha256Fingerprint(Buffer.from(blob, 'base64')) : undefined;
}

/**
 * Whether to pin the key a host presents. There is no silent trust on first use: a new key is
 * pinned only when it matches the fingerprint given on the command line, when the admin
 * confirms it, or with --accept-host-keys; a key that differs from the pinned one is refused
 * unless the new fingerprint is given or confirmed.
 */
export async function decidePin(h: PinInput, o: { acceptAll: boolean; prompter: Prompter | undefined }): Promise<PinDecision> {
  const label = `${h.name} (${h.address}:${h.port})`;
  if (!h.scanned) {
    return h.pinned ? { kind: 'keep', hostKey: h.pinned, note: 'unreachable now; pin kept' } : { kind: 'skip', note: 'unreachable: not pinned, run setup again when it answers' };
  }
  const fp = h.scanned.fingerprint;
  const pinnedFp = h.pinned !== undefined ? pinFingerprint(h.pinned) : undefined;
  if (pinnedFp === fp) return { kind: 'keep', hostKey: h.pinned as string, note: 'pinned key matches' };
  const changed = h.pinned !== undefined;
  if (h.expected !== undefined) {
    if (pinFingerprint(h.expected) !== fp) {
      throw new AppError('SETUP_HOST_KEY_UNTRUSTED', `host ${label} presents ${fp}, not the ${h.expected} given with --host-key: nothing pinned`);
    }
    return { kind: 'pin', hostKey: fp, note: changed ? 'key changed; new key pinned as given' : 'pinned as given' };
  }
  if (changed) {
    const question = `WARNING: host ${label} now presents ${h.scanned.type} ${fp}, not the pinned key (${pinnedFp ?? 'unreadable pin'}). Pin the new key?`;
    if (o.prompter && (await o.prompter.confirm(question, { default: false }))) return { kind: 'pin', hostKey: fp, note: 'key changed; new key pinned after confirmation' };
    throw new AppError(
      'SETUP_HOST_KEY_UNTRUSTED',
      `host ${label} presents ${fp}, not its pinned key ${pinnedFp ?? h.pinned}: if the host was reinstalled, pass --host-key ${h.address}=${fp} after checking it on the host`,
    );
  }
  if (o.acceptAll) return { kind: 'pin', hostKey: fp, note: 'pinned (--accept-host-keys)' };
  if (o.prompter) {
    const ok = await o.prompter.confirm(
      `host ${label} presents ${h.scanned.type} ${fp}; compare with "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" on the host (or the engine's host details). Pin it?`,
      { default: false },
    );
    if (ok) return { kind: 'pin', hostKey: fp, note: 'pinned after confirmation' };
    return { kind: 'skip', note: 'not confirmed: not pinned' };
  }
  throw new AppError(
    'SETUP_HOST_KEY_UNTRUSTED',
    `host ${label} presents ${h.scanned.type} ${fp}: check it on the host, then pass --host-key ${h.address}=${fp} (or --accept-host-keys)`,
  );
}
