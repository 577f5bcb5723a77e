import type { Command } from 'commander';
import { Repository } from '../../repository';
import { printJson, printTable } from '../output';
import { formatBytes } from '../progressBar';

export function registerPoints(program: Command): void {
  program
    .command('points')
    .description('list restore points, oldest first')
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--vm <name>', 'only the points of this VM')
    .option('--json', 'print a JSON array')
    .action(async (o: { repo: string; vm?: string; json?: boolean }) => {
      const repository = await Repository.open(o.repo);
      try {
        const points = await repository.listPoints(o.vm ? { vmKey: o.vm } : undefined);
        if (o.json) {
          printJson(points);
          return;
        }
        printTable(
          ['POINT', 'VM', 'CREATED', 'DISKS', 'READ', 'STORED'],
          points.map((p) => [
            p.pointId,
            p.vm.name,
            p.createdAt,
            p.disks.map((d) => `${d.device}:${d.mode}`).join(','),
            formatBytes(p.disks.reduce((n, d) => n + d.bytesRead, 0)),
            formatBytes(p.disks.reduce((n, d) => n + d.bytesStored, 0)),
          ]),
        );
      } finally {
        await repository.close();
      }
    });
}
