/**
 * Local account names for messages about file ownership ("belongs to olvm-backup (uid 990)"),
 * through the system's name service (getent: /etc/passwd, LDAP, sssd alike).
 */
import { execFileSync } from 'child_process';

/** The user name of `uid`, or `uid <n>` when the name service does not know it. */
export function accountName(uid: number): string {
  try {
    const line = execFileSync('getent', ['passwd', String(uid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim();
    const name = line.split(':')[0];
    if (name) return name;
  } catch {
    // not known (a uid of another machine, a container without the account)
  }
  return `uid ${uid}`;
}

/** `name (uid n)`, or `uid n` alone when there is no name. */
export function describeAccount(uid: number): string {
  const name = accountName(uid);
  return name === `uid ${uid}` ? name : `${name} (uid ${uid})`;
}

/** The effective uid of this process (0 where the platform has none, as on Windows). */
export function effectiveUid(): number {
  return process.geteuid?.() ?? 0;
}
