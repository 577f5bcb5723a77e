import type { Command } from 'commander';
import { AppError } from '../../errors';
import { addRepoOptions, type RepoFlags } from '../repoFlags';
import { printJson, printTable } from '../output';

export function registerAudit(program: Command): void {
  addRepoOptions(program.command('audit').description("print the repository's audit log (deletions, prunes, lock changes, unlocks, gc, damage marks)"))
    .option('--since <date>', 'only records at or after this ISO 8601 date')
    .option('--json', 'print a JSON array')
    .action(async (o: RepoFlags & { since?: string; json?: boolean }) => {
      let since: Date | undefined;
      if (o.since !== undefined) {
        since = new Date(o.since);
        if (Number.isNaN(since.getTime())) throw new AppError('INVALID_ARGUMENT', `--since: '${o.since}' is not a date`);
      }
      const { openRepository } = await import('../repoOpen');
      const repository = await openRepository(o);
      try {
        const records = await repository.auditLog(since ? { since } : {});
        if (o.json) {
          printJson(records);
          return;
        }
        printTable(
          ['TIME', 'ACTOR', 'ACTION', 'POINT', 'REASON'],
          records.map((r) => [r.time, r.actor, r.action, r.pointId ?? '-', r.reason ?? '']),
        );
      } finally {
        await repository.close();
      }
    });
}
