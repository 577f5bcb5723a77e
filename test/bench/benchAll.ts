/**
 * `npm run bench`: every measurement of the repository's speed and storage in one run, one JSON
 * document (nothing asserted). Each part runs as its own process, one after the other, on the
 * same machine:
 *  - backup: full and incremental against `nbdcopy` of the same export, restore to a raw file
 *    against `qemu-img convert` — format 2 plain and encrypted, random and compressible data,
 *    and format 1 as the reference of the previous repository;
 *  - daily: a week of 20 × 1 MiB writes a day through the installed command, per chunk size;
 *  - index: index bytes per incremental point of a 1 TiB sparse disk, 1 % changed;
 *  - export: a 1 GiB point of mixed data read through `olvm-backup export` by nbdcopy, against
 *    restoring it to a file.
 * `--quick` uses a 1 GiB disk with 512 MiB of data, 3 days and a 64 GiB index disk.
 */
import { spawn } from 'child_process';
import * as os from 'os';
import * as path from 'path';

function run(script: string, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${script} ${args.join(' ')} exited ${code}`));
      else resolve(JSON.parse(out) as unknown);
    });
  });
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const disk = quick ? ['--disk-gib', '1', '--data-gib', '0.5'] : ['--disk-gib', '2', '--data-gib', '1'];
  const variants: Array<{ name: string; args: string[] }> = [
    { name: 'format 2, random data', args: ['--format', '2'] },
    { name: 'format 2 encrypted, random data', args: ['--format', '2', '--encrypted', '1'] },
    { name: 'format 2, compressible data', args: ['--format', '2', '--compressible'] },
    { name: 'format 2 encrypted, compressible data', args: ['--format', '2', '--encrypted', '1', '--compressible'] },
    { name: 'format 1 (previous repository), random data', args: ['--format', '1'] },
  ];
  const backup: Record<string, unknown> = {};
  for (const v of variants) {
    process.stderr.write(`bench: backup, ${v.name}\n`);
    backup[v.name] = await run('backupBench.js', [...disk, ...v.args]);
  }
  process.stderr.write('bench: a week of daily incrementals\n');
  const daily = await run('dailyBench.js', [...disk, '--days', quick ? '3' : '7']);
  process.stderr.write('bench: index bytes per point\n');
  const index = await run('indexBench.js', ['--disk-gib', quick ? '64' : '1024', '--change-pct', '1']);
  process.stderr.write('bench: a point read through the NBD export\n');
  const exported = await run('exportBench.js', ['--disk-gib', '1']);
  const doc = { machine: { cpus: os.cpus().length, memoryBytes: os.totalmem(), node: process.version }, backup, daily, index, export: exported };
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
