import type { Command } from 'commander';
import { AppError } from '../../errors';
import { addEngineOptions } from '../engineOptions';
import { printJson, printLine } from '../output';
import { addRepoOptions, type RepoFlags } from '../repoFlags';
import type { EngineRestoreOptions } from './restoreEngine';
import { formatBytes, ProgressBar } from '../progressBar';

interface RestoreOptions extends EngineRestoreOptions, RepoFlags {
  point: string;
  out?: string;
  format: string;
  force?: boolean;
  json?: boolean;
}

export function registerRestore(program: Command): void {
  const cmd = addRepoOptions(program.command('restore').description('write one disk of a restore point to an image file (--disk, --out), or restore the point into the engine (--engine)'))
    .requiredOption('--point <id>', 'restore point id (see `points`)')
    .option('--disk <disk...>', 'to a file: the disk (its device id, or its engine disk id or alias); into the engine: only these device ids')
    .option('--out <file>', 'image file to create')
    .option('--format <raw|qcow2>', 'image format', 'raw')
    .option('--force', 'replace --out if it exists');
  addEngineOptions(cmd, 'restore into this engine: its base URL, https://<fqdn>/ovirt-engine')
    .option('--as-new-vm <name>', 'into the engine: a new vm of this name (new ids, new MACs)')
    .option('--original-ids', 'into the engine: the vm back under its own ids and MACs (it must be gone)')
    .option('--cluster <id|name>', "into the engine: the target cluster (default: the original's)")
    .option('--storage-domain <id|name>', "into the engine: where every disk goes (default: each disk's original domain)")
    .option('--dry-run', 'into the engine: print the plan and its problems, write nothing')
    .option('--json', 'print the result as JSON')
    .action(async (o: RestoreOptions) => {
      if (o.engine !== undefined) {
        if (o.out !== undefined) throw new AppError('INVALID_ARGUMENT', '--out is for a restore to a file, not into the engine');
        const [{ openRepository }, { restoreIntoEngine }] = await Promise.all([import('../repoOpen'), import('./restoreEngine')]);
        const repository = await openRepository(o);
        try {
          await restoreIntoEngine(o, repository);
        } finally {
          await repository.close();
        }
        return;
      }
      const wanted = o.disk?.length === 1 ? o.disk[0] : undefined;
      if (wanted === undefined || o.out === undefined) throw new AppError('INVALID_ARGUMENT', 'a restore to a file needs one --disk and --out (or restore into the engine with --engine)');
      const out = o.out;
      if (o.format !== 'raw' && o.format !== 'qcow2') {
        throw new AppError('INVALID_ARGUMENT', `--format must be raw or qcow2, not '${o.format}'`);
      }
      const [{ openRepository }, { readDiskMeta }, { restoreToFile }] = await Promise.all([import('../repoOpen'), import('../../repository'), import('../../restore')]);
      const repository = await openRepository(o);
      const bar = ProgressBar.forStderr(o.json === true);
      try {
        const manifest = await repository.readManifest(o.point);
        // a disk is named by its device id, or by what the engine calls it (disk id, alias)
        const disk = manifest.disks.find((d) => d.device === wanted || readDiskMeta(d).diskId === wanted || readDiskMeta(d).alias === wanted);
        if (!disk) {
          throw new AppError(
            'REPO_DISK_NOT_FOUND',
            `point ${o.point} has no disk '${wanted}' (it has: ${manifest.disks.map((d) => d.device).join(', ')})`,
          );
        }
        const r = await restoreToFile({
          repository,
          pointId: o.point,
          device: disk.device,
          out,
          format: o.format,
          overwrite: o.force === true,
          onProgress: (done, total) => bar.update(done * repository.chunkSize, total * repository.chunkSize, wanted),
        });
        bar.finish();
        if (o.json) printJson({ point: o.point, disk: wanted, out, format: o.format, virtualSize: r.virtualSize, bytesWritten: r.bytesWritten });
        else printLine(`restored ${wanted} of point ${o.point} to ${out} (${o.format}, ${formatBytes(r.virtualSize)}, ${formatBytes(r.bytesWritten)} of data)`);
      } finally {
        bar.finish();
        await repository.close();
      }
    });
}
