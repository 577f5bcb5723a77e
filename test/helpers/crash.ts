/** Processes that die: the CLI killed at a chosen moment, a pid that no longer runs. */
import { spawn } from 'child_process';
import type { CrashPoint } from '../../backend/src/util/crashPoint';
import { CLI_MAIN } from './cli';

/**
 * Runs the CLI with `args` and OLVM_BACKUP_TEST_STOP_AT=`at` (util/crashPoint.ts), waits until it
 * says it stopped there and SIGKILLs it. Rejects if it ends (or takes 2 minutes) without stopping.
 */
export async function runKilledAt(args: readonly string[], at: CrashPoint): Promise<void> {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OLVM_BACKUP_TEST_STOP_AT: at } });
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the run did not stop at ${at} within 2 minutes: ${stderr}`)), 120_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes(`stopped at ${at}\n`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the run ended (${String(code ?? signal)}) without stopping at ${at}: ${stderr}`));
      });
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Runs the CLI with `args` and SIGKILLs it as soon as `cond` holds (polled every few ms). The
 * signal is null when the run ended on its own before `cond` held (or within `timeoutMs`).
 * `env` is set beside this process's environment.
 */
export async function runKilledWhen(
  args: readonly string[],
  cond: () => Promise<boolean>,
  timeoutMs = 240_000,
  env: Record<string, string> = {},
): Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let ended = false;
  void exited.then(() => (ended = true));
  const deadline = Date.now() + timeoutMs;
  while (!ended && Date.now() < deadline) {
    if (await cond().catch(() => false)) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill('SIGKILL');
  const r = await exited;
  return { ...r, stderr };
}

/** The pid of a process that has exited (a lock of it is stale, FORMAT.md §8). */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  const pid = child.pid as number;
  await new Promise((r) => child.once('exit', r));
  return pid;
}
