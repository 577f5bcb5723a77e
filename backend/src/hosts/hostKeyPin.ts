// The pinned SSH host key: fingerprints as ssh-keygen prints them, and the matcher a connection
// checks the presented key with (there is no trust on first use).
import { createHash } from 'crypto';
import { AppError } from '../errors';

/** `SHA256:<base64 without padding>` of a public key blob, as `ssh-keygen -lf` prints it. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Parses the configured pin into a matcher on the key blob the server presents. */
export function hostKeyMatcher(pin: string): (key: Buffer) => boolean {
  const p = pin.trim();
  if (/^SHA256:/i.test(p)) {
    const want = `SHA256:${p.slice(7).replace(/=+$/, '')}`;
    return (key) => sha256Fingerprint(key) === want;
  }
  // "[host]:port ssh-ed25519 AAAA… comment", "ssh-ed25519 AAAA… comment" or "AAAA…"
  const blob = p.split(/\s+/).find((f) => /^AAAA[A-Za-z0-9+/]+=*$/.test(f));
  if (!blob) throw new AppError('INVALID_ARGUMENT', 'the pinned host key is neither a public key nor a SHA256 fingerprint');
  const want = Buffer.from(blob, 'base64');
  return (key) => key.equals(want);
}
