/**
 * A second local account for tests of a repository shared by two accounts (the service account
 * and root, say): the system account `olvm-other` is created if missing, and commands run as it
 * through `setpriv` (real uid/gid switched, no supplementary groups of root kept). The tests that
 * use it run as root, as the CI does.
 */
import { execFile, execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';

export const OTHER_USER = 'olvm-other';

export interface Account {
  user: string;
  uid: number;
  gid: number;
}

/** The test account, created (system account, own group, no home, no shell) when missing. */
export function otherAccount(): Account {
  if (process.getuid?.() !== 0) throw new Error('these tests switch accounts: run them as root (as the CI does)');
  const lookup = (): string | undefined => {
    try {
      return execFileSync('getent', ['passwd', OTHER_USER], { encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  };
  let line = lookup();
  if (!line) {
    try {
      execFileSync('useradd', ['-r', '-U', '-M', '-s', '/usr/sbin/nologin', OTHER_USER], { stdio: 'ignore' });
    } catch {
      // another test process created it at the same moment: the lookup below decides
    }
    line = lookup();
  }
  if (!line) throw new Error(`could not create the test account ${OTHER_USER}`);
  const f = line.split(':');
  return { user: OTHER_USER, uid: Number(f[2]), gid: Number(f[3]) };
}

/** The argv prefix that runs a command as `a`. */
export function asAccount(a: Account): string[] {
  return ['setpriv', `--reuid=${a.uid}`, `--regid=${a.gid}`, '--clear-groups', '--'];
}

/** Runs a command as `a`; never rejects (the exit code says how it went). */
export function runAs(a: Account, argv: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...args] = asAccount(a);
  return new Promise((resolve) => {
    execFile(cmd as string, [...args, ...argv], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A node script running as `a`, with pipes (stdin for go-ahead lines, stdout for its words). */
export function spawnNodeAs(a: Account, script: string): ChildProcessWithoutNullStreams {
  const [cmd, ...args] = asAccount(a);
  return spawn(cmd as string, [...args, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * Makes every directory under `dir` (and `dir`) group `gid`, group-writable and set-group-id (so
 * what either account creates inside stays in the group), and every file group-readable: the
 * set-up of a repository two accounts share. The parents of `dir` become searchable.
 */
export async function shareWithGroup(dir: string, gid: number): Promise<void> {
  const walk = async (p: string): Promise<void> => {
    const st = await fs.lstat(p);
    await fs.chown(p, st.uid, gid);
    if (st.isDirectory()) {
      await fs.chmod(p, 0o2775);
      for (const e of await fs.readdir(p)) await walk(path.join(p, e));
    } else {
      await fs.chmod(p, (st.mode & 0o777) | 0o040);
    }
  };
  await walk(dir);
  for (let p = path.dirname(dir); p !== path.dirname(p); p = path.dirname(p)) {
    const st = await fs.stat(p);
    if ((st.mode & 0o001) === 0) await fs.chmod(p, (st.mode & 0o7777) | 0o001);
  }
}

/** Resolves when the child printed `word` on a line of its own; rejects if it exits first. */
export function childSaid(child: ChildProcessWithoutNullStreams, output: { text: string }, word: string, timeoutMs = 60_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`the child did not say "${word}" within ${timeoutMs} ms; it said: ${output.text}`)), timeoutMs);
    const check = (): void => {
      if (output.text.split('\n').includes(word)) done();
    };
    const onExit = (code: number | null): void => done(new Error(`the child exited (${code}) before saying "${word}"; it said: ${output.text}`));
    const done = (err?: Error): void => {
      clearTimeout(timer);
      child.stdout.off('data', check);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    child.stdout.on('data', check);
    child.once('exit', onExit);
    check();
  });
}
