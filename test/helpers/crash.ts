/** Processes that die: the CLI killed at a chosen moment, a pid that no longer runs. */
import { spawn } from 'child_process';
import { CLI_MAIN } from './cli';

/**
 * Runs the CLI with `args` and SIGKILLs it as soon as `cond` holds (polled every few ms). The
 * signal is null when the run ended on its own before `cond` held (or within `timeoutMs`).
 */
export async function runKilledWhen(args: readonly string[], cond: () => Promise<boolean>, timeoutMs = 240_000): Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
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
