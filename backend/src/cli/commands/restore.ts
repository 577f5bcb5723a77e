import type { Command } from 'commander';
import { AppError } from '../../errors';
import { readDiskMeta, Repository } from '../../repository';
import { restoreToFile } from '../../restore';
import { printJson, printLine } from '../output';
import { formatBytes, ProgressBar } from '../progressBar';

interface RestoreOptions {
  repo: string;
  point: string;
  disk: string;
  out: string;
  format: string;
  force?: boolean;
  json?: boolean;
}

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description("write one disk of a restore point to an image file")
    .requiredOption('--repo <dir>', 'repository directory')
    .requiredOption('--point <id>', 'restore point id (see `points`)')
    .requiredOption('--disk <disk>', 'the disk: its device id in the point, or its engine disk id or alias')
    .requiredOption('--out <file>', 'image file to create')
    .option('--format <raw|qcow2>', 'image format', 'raw')
    .option('--force', 'replace --out if it exists')
    .option('--json', 'print the result as JSON')
    .action(async (o: RestoreOptions) => {
      if (o.format !== 'raw' && o.format !== 'qcow2') {
        throw new AppError('INVALID_ARGUMENT', `--format must be raw or qcow2, not '${o.format}'`);
      }
      const repository = await Repository.open(o.repo);
      const bar = ProgressBar.forStderr(o.json === true);
      try {
        const manifest = await repository.readManifest(o.point);
        // a disk is named by its device id, or by what the engine calls it (disk id, alias)
        const disk = manifest.disks.find((d) => d.device === o.disk || readDiskMeta(d).diskId === o.disk || readDiskMeta(d).alias === o.disk);
        if (!disk) {
          throw new AppError(
            'REPO_DISK_NOT_FOUND',
            `point ${o.point} has no disk '${o.disk}' (it has: ${manifest.disks.map((d) => d.device).join(', ')})`,
          );
        }
        const r = await restoreToFile({
          repository,
          pointId: o.point,
          device: disk.device,
          out: o.out,
          format: o.format,
          overwrite: o.force === true,
          onProgress: (done, total) => bar.update(done * repository.chunkSize, total * repository.chunkSize, o.disk),
        });
        bar.finish();
        if (o.json) printJson({ point: o.point, disk: o.disk, out: o.out, format: o.format, virtualSize: r.virtualSize, bytesWritten: r.bytesWritten });
        else printLine(`restored ${o.disk} of point ${o.point} to ${o.out} (${o.format}, ${formatBytes(r.virtualSize)}, ${formatBytes(r.bytesWritten)} of data)`);
      } finally {
        bar.finish();
        await repository.close();
      }
    });
}
