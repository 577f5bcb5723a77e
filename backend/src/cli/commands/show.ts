import type { Command } from 'commander';
import { addRepoOptions, type RepoFlags } from '../repoFlags';
import { printJson, printLine } from '../output';
import { formatBytes } from '../progressBar';

export function registerShow(program: Command): void {
  addRepoOptions(program.command('show').description("print a restore point's manifest (with the stored VM definition)"))
    .requiredOption('--point <id>', 'restore point id')
    .option('--json', 'the whole manifest as JSON')
    .action(async (o: RepoFlags & { point: string; json?: boolean }) => {
      const { openRepository } = await import('../repoOpen');
      const repository = await openRepository(o);
      try {
        const m = await repository.readManifest(o.point);
        if (o.json) {
          printJson(m);
          return;
        }
        const { readPointMeta } = await import('../../repository');
        // points from before the engine method name none: they were made through QMP
        const method = readPointMeta(m).method ?? 'qmp';
        printLine(`point ${m.pointId} of vm ${m.vm.name}${m.vm.id ? ` (${m.vm.id})` : ''}, taken ${m.createdAt}, ${m.consistency}-consistent, method ${method}`);
        printLine(`parent: ${m.parentPointId ?? 'none'}; definition: ${m.vmDefinition ? `${m.vmDefinition.kind}, ${m.vmDefinition.content.length} bytes` : 'none'}`);
        for (const d of m.disks) {
          printLine(`  ${d.device}: ${d.format} ${formatBytes(d.virtualSize)}, ${d.mode} (${d.reason}), read ${formatBytes(d.bytesRead)}, stored ${formatBytes(d.bytesStored)}`);
        }
      } finally {
        await repository.close();
      }
    });
}
