import { execFile } from 'child_process';
import * as path from 'path';

/** The built operator CLI (dist/backend/src/cli/main.js). */
export const CLI_MAIN = path.resolve(__dirname, '../../backend/src/cli/main.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The operator CLI in a process of its own, as on the backup server. Never rejects: the exit
 *  code says how it went (1 when it was killed, e.g. by the timeout). `env` is set beside this
 *  process's environment (undefined: removed from it). */
export function runCli(args: readonly string[], timeoutMs = 120_000, env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_MAIN, ...args], { timeout: timeoutMs, env: childEnv }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
