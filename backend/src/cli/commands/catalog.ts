import * as path from 'path';
import type { Command } from 'commander';
import { addRepoOptions, type RepoFlags } from '../repoFlags';
import { printJson, printLine } from '../output';

export function registerCatalog(program: Command): void {
  const catalog = program.command('catalog').description("manage the backup service's catalog (SQLite)");
  addRepoOptions(catalog.command('rebuild').description('recreate the restore point index of a catalog from the repository (job history is kept)'))
    .requiredOption('--catalog <file>', 'catalog database file (created if missing)')
    .option('--json', 'print the result as JSON')
    .action(async (o: RepoFlags & { catalog: string; json?: boolean }) => {
      const file = path.resolve(o.catalog);
      const { Catalog, rebuildCatalog } = await import('../../catalog');
      const { openRepository } = await import('../repoOpen');
      const repository = await openRepository(o);
      try {
        const db = Catalog.open(file);
        try {
          const { points, vms } = await rebuildCatalog(db, repository);
          if (o.json) printJson({ repo: repository.dir, catalog: file, points, vms });
          else printLine(`catalog rebuilt: ${points} restore points of ${vms} VMs from ${repository.dir}`);
        } finally {
          db.close();
        }
      } finally {
        await repository.close();
      }
    });
}
