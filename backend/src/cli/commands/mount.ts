/**
 * `olvm-backup mount`: one filesystem of a restore point mounted read-only on a folder through
 * guestmount (FUSE; restore/fileMount.ts) over our NBD export of the disk, until SIGINT or
 * SIGTERM; then it is unmounted, the export stopped and the point's read lease released.
 */
import type { Command } from 'commander';
import { describeError } from '../../errors';
import type { PointMount } from '../../restore';
import { printJson, printLine } from '../output';
import { catchStopSignals } from '../stopSignals';
import { addRepoOptions, type RepoFlags } from '../repoFlags';

interface MountOptions extends RepoFlags {
  point: string;
  disk: string;
  fs?: string;
  accel?: 'auto' | 'kvm' | 'tcg';
  json?: boolean;
}

export function registerMount(program: Command): void {
  addRepoOptions(program.command('mount').description('mount a filesystem of a restore point read-only on DIR (guestmount) until SIGINT/SIGTERM'))
    .argument('<dir>', 'an empty folder to mount on')
    .requiredOption('--point <id>', 'restore point id (see `points`)')
    .requiredOption('--disk <disk>', 'the disk: its device id, or its engine disk id or alias')
    .option('--fs <device>', 'the filesystem as libguestfs names it (/dev/sda1, /dev/vg/lv); default: the operating system found on the disk')
    .option('--accel <mode>', 'auto, kvm or tcg for the appliance', 'auto')
    .option('--json', 'print where it is mounted as one JSON line')
    .action(async (dir: string, o: MountOptions) => {
      const [{ openRepository, cliActor }, restore] = await Promise.all([import('../repoOpen'), import('../../restore')]);
      const repository = await openRepository(o);
      let mounted: PointMount | undefined;
      const stop = catchStopSignals();
      try {
        mounted = await restore.PointMount.open({ repository, pointId: o.point, disk: o.disk, ...(o.fs ? { filesystem: o.fs } : {}), dir, actor: cliActor(), accel: o.accel ?? 'auto' });
        if (o.json) printJson({ point: o.point, disk: o.disk, filesystem: o.fs ?? null, dir: mounted.dir });
        else printLine(`mounted ${o.fs ?? 'the disk\'s system'} of disk ${o.disk} of point ${o.point} read-only on ${mounted.dir}; stop with Ctrl-C or SIGTERM`);
        await stop.wait();
      } finally {
        stop.dispose();
        await mounted?.close().catch((err: unknown) => process.stderr.write(`olvm-backup: unmounting: ${describeError(err)}\n`));
        await repository.close();
      }
    });
}
