import { execFile } from 'child_process';
import { AppError } from '../errors';

/**
 * Runs a helper program (qemu-img, qemu-nbd) with a timeout; a failure carries the program's
 * stderr so the one-line report says why, and a missing program says so plainly.
 */
export function runTool(file: string, args: string[], opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: opts.timeoutMs ?? 60_000, signal: opts.signal, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        const why =
          e.code === 'ENOENT'
            ? `${file} is not installed (not found on PATH)`
            : e.killed
              ? `${file} did not finish within ${opts.timeoutMs ?? 60_000} ms`
              : (stderr || e.message).trim().split('\n').slice(-3).join(' ');
        reject(new AppError('TOOL_FAILED', `${file} ${args[0] ?? ''} failed: ${why}`, { cause: err, details: { file, args } }));
      },
    );
  });
}
