import * as os from 'os';
import type { Command } from 'commander';
import { runBackup } from '../../backup';
import { LocalHost } from '../../hosts';
import { QmpClient } from '../../qmp';
import { Repository } from '../../repository';
import { printJson, printLine } from '../output';
import { formatBytes, ProgressBar } from '../progressBar';
import { vmFromName } from '../vmIdentity';

interface BackupOptions {
  repo: string;
  qmp: string;
  vm: string;
  scratch: string;
  disk?: string[];
  full?: boolean;
  transientBitmaps?: boolean;
  json?: boolean;
}

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('back up a running QEMU VM through its QMP socket (incremental when its bitmaps allow)')
    .requiredOption('--repo <dir>', 'repository directory')
    .requiredOption('--qmp <socket>', "the VM's QMP unix socket (a monitor no other client is attached to)")
    .requiredOption('--vm <name>', 'the name restore points are filed under')
    .option('--scratch <dir>', 'directory for fleece images and the NBD socket', os.tmpdir())
    .option('--disk <device...>', 'back up only these device ids')
    .option('--full', 'copy every disk whole even if an incremental is possible')
    .option('--transient-bitmaps', 'keep bitmaps in QEMU memory only (when another backup product uses the disks)')
    .option('--json', 'print the result as one JSON object')
    .action(async (o: BackupOptions) => {
      const vm = vmFromName(o.vm);
      const repository = await Repository.open(o.repo);
      const bar = ProgressBar.forStderr(o.json === true);
      let qmp: QmpClient | undefined;
      try {
        qmp = await QmpClient.connectUnix(o.qmp);
        const { manifest, warnings } = await runBackup({
          vm,
          qmp,
          host: new LocalHost(),
          repository,
          scratchDir: o.scratch,
          ...(o.disk ? { devices: o.disk } : {}),
          forceFull: o.full === true,
          transientBitmaps: o.transientBitmaps === true,
          onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal, p.device ?? p.phase),
        });
        bar.finish();
        for (const w of warnings) process.stderr.write(`olvm-backup: warning: ${w}\n`);
        const disks = manifest.disks.map((d) => ({ device: d.device, node: d.node, mode: d.mode, reason: d.reason, bytesRead: d.bytesRead }));
        if (o.json) {
          printJson({ point: manifest.pointId, vm: manifest.vm.name, disks });
        } else {
          printLine(`point ${manifest.pointId} of vm ${manifest.vm.name}`);
          for (const d of manifest.disks) {
            printLine(`  ${d.device}: ${d.mode} (${d.reason}), read ${formatBytes(d.bytesRead)}, stored ${formatBytes(d.bytesStored)} new`);
          }
        }
      } finally {
        bar.finish();
        await qmp?.close();
        await repository.close();
      }
    });
}
