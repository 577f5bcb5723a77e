import { mkdtempSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineSim } from './index';

/**
 * `node dist/test/engine-sim/main.js [DATA_DIR] [--port N] [--tls] [--no-seed] [--hosts N]`: runs the
 * engine simulator (a temporary data dir when none is given), prints one JSON line with
 * baseUrl, caFile, users, qmpDir and the hosts, and runs until SIGINT/SIGTERM.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let dataDir: string | undefined;
  let port = 0;
  let tls = false;
  let seed = true;
  let hosts: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--port') port = Number(args[++i]);
    else if (a === '--tls') tls = true;
    else if (a === '--no-seed') seed = false;
    else if (a === '--hosts') hosts = Number(args[++i]);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else dataDir = a;
  }
  dataDir ??= mkdtempSync(path.join(os.tmpdir(), 'engine-sim-'));
  const sim = await EngineSim.start({ dataDir, port, tls, seed, hosts });
  process.stdout.write(`${JSON.stringify({ baseUrl: sim.baseUrl, caFile: sim.caFile ?? null, users: sim.users, qmpDir: sim.qmpDir, dataDir, hosts: sim.hostIds() })}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    sim.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`engine-sim: close failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`engine-sim: ${(err as Error).message}\n`);
  process.exit(1);
});
