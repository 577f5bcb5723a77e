import type { Command } from 'commander';
import { AppError } from '../../errors';
import type { GfsRules, PruneDecision } from '../../repository';
import { printJson, printLine, printTable } from '../output';
import { addRepoOptions, ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP, type RepoFlags } from '../repoFlags';

/** "7" → 7; "unlimited" → Infinity (every period). */
function parseCount(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (/^(unlimited|all)$/i.test(text.trim())) return Infinity;
  if (!/^\d+$/.test(text.trim())) throw new AppError('INVALID_ARGUMENT', `${flag}: '${text}' is not a whole number >= 0 (or "unlimited")`);
  return Number(text.trim());
}

/** The ACTION column: `leased` says so, not "deferred" (the report's `deferred` are removed
 *  points whose files wait in trash/). */
const ACTION_WORDS: Record<PruneDecision['action'], (dryRun: boolean) => string> = {
  keep: () => 'keep',
  remove: (dryRun) => (dryRun ? 'would remove' : 'removed'),
  locked: () => 'skipped',
  leased: () => 'being read',
};

interface PruneFlags extends RepoFlags {
  keepLast?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  tz?: string;
  vm?: string;
  dryRun?: boolean;
  reason?: string;
  operator?: string;
  allowOtherOwner?: boolean;
  json?: boolean;
}

export function registerPrune(program: Command): void {
  addRepoOptions(program.command('prune').description('delete the restore points the GFS rules do not keep (each VM on its own); locked points are skipped; audited'))
    .option('--keep-last <n>', 'keep the n newest points')
    .option('--keep-daily <n>', 'keep the newest point of each of the n latest days that have points')
    .option('--keep-weekly <n>', 'same per ISO week (Monday to Sunday)')
    .option('--keep-monthly <n>', 'same per calendar month')
    .option('--keep-yearly <n>', 'same per calendar year')
    .option('--tz <zone>', 'IANA time zone the days, weeks, months and years are counted in (default: the system zone)')
    .option('--vm <key>', 'only the points of this VM')
    .option('--dry-run', 'only print what would be removed')
    .option('--reason <text>', 'written to the audit log')
    .option('--operator <name>', 'who asks (default: the login user)')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the report as JSON')
    .action(async (o: PruneFlags) => {
      const rules: GfsRules = {};
      const set = (k: keyof GfsRules, v: string | undefined, flag: string): void => {
        const n = parseCount(v, flag);
        if (n !== undefined) rules[k] = n;
      };
      set('keepLast', o.keepLast, '--keep-last');
      set('daily', o.keepDaily, '--keep-daily');
      set('weekly', o.keepWeekly, '--keep-weekly');
      set('monthly', o.keepMonthly, '--keep-monthly');
      set('yearly', o.keepYearly, '--keep-yearly');
      const { cliActor, openRepository } = await import('../repoOpen');
      const { openForWriting } = await import('../repoOwner');
      const repository = o.dryRun ? await openRepository(o) : await openForWriting(o);
      try {
        const report = await repository.prune(rules, {
          ...(o.tz ? { tz: o.tz } : {}),
          ...(o.vm ? { vmKey: o.vm } : {}),
          dryRun: o.dryRun === true,
          actor: cliActor(o.operator),
          ...(o.reason ? { reason: o.reason } : {}),
        });
        if (o.json) {
          printJson(report);
          return;
        }
        printTable(
          ['POINT', 'VM', 'CREATED', 'ACTION', 'WHY'],
          report.points.map((p) => [
            p.pointId,
            p.vmName,
            p.createdAt,
            ACTION_WORDS[p.action](report.dryRun),
            p.action === 'leased'
              ? `no rule keeps it, but it is being read (${p.leased?.purpose ?? '?'} since ${p.leased?.since ?? '?'}): a later prune removes it`
              : p.action === 'keep'
                ? `kept by ${p.keptBy.join(', ')}`
                : p.action === 'locked'
                  ? `locked until ${p.lockedUntil}`
                  : 'no rule keeps it',
          ]),
        );
        printLine(
          `${report.dryRun ? 'dry run: ' : ''}${report.kept} kept, ${report.removed.length} ${report.dryRun ? 'would be removed' : 'removed'}` +
            `${report.deferred.length ? ` (${report.deferred.length} wait in trash/ for a running backup)` : ''}, ` +
            `${report.locked.length} locked and skipped${report.leased.length ? `, ${report.leased.length} being read and left for a later prune` : ''} (time zone ${report.timeZone})` +
            (report.dryRun || report.removed.length === 0 ? '' : '; run gc to free their chunks'),
        );
      } finally {
        await repository.close();
      }
    });
}
