import type { Command } from 'commander';
import { AppError } from '../../errors';
import { printJson, printLine } from '../output';
import { formatBytes } from '../progressBar';
import { addRepoOptions, ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP, type RepoFlags } from '../repoFlags';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "1h", "30m", "90s", "2d", "0" → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (text.trim() === '0') return 0;
  if (!m) throw new AppError('INVALID_ARGUMENT', `${what}: '${text}' is not a duration (e.g. 1h, 30m, 90s, 2d)`);
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
}

export function registerGc(program: Command): void {
  addRepoOptions(program.command('gc').description('remove chunks no restore point references (safe while backups run); audited'))
    .option('--grace <duration>', 'keep unreferenced chunks younger than this', '1h')
    .option('--repack-below <share>', 'format 2: rewrite packs whose live share of bytes is below this (0..1, default 0.5; 0: never)')
    .option('--dry-run', 'only count what would be removed')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the report as JSON')
    .action(async (o: RepoFlags & { grace: string; repackBelow?: string; dryRun?: boolean; allowOtherOwner?: boolean; json?: boolean }) => {
      const graceMs = parseDuration(o.grace, '--grace');
      const repackBelow = o.repackBelow === undefined ? undefined : Number(o.repackBelow);
      if (repackBelow !== undefined && !(repackBelow >= 0 && repackBelow <= 1)) throw new AppError('INVALID_ARGUMENT', `--repack-below: '${o.repackBelow}' is not a share between 0 and 1`);
      // a dry run writes nothing but its lock file, which it removes
      const { cliActor, openRepository } = await import('../repoOpen');
      const { openForWriting } = await import('../repoOwner');
      const repository = o.dryRun ? await openRepository(o) : await openForWriting(o);
      try {
        const r = await repository.gc({ graceMs, dryRun: o.dryRun === true, actor: cliActor(), ...(repackBelow !== undefined ? { repackBelow } : {}) });
        if (o.json) {
          printJson(r);
          return;
        }
        printLine(
          `${r.dryRun ? 'dry run: would remove' : 'removed'} ${r.chunksRemoved} chunks (${formatBytes(r.bytesRemoved)}) of ${r.chunksScanned}; ` +
            `${r.chunksReferenced} referenced by ${r.pointsMarked} points and running backups, ${r.chunksKeptYoung} unreferenced kept (younger than ${r.cutoff})` +
            (r.chunksPutBack ? `, ${r.chunksPutBack} put back (reused by a backup meanwhile)` : '') +
            // format 2: what happened to whole pack files
            (r.packsRemoved !== undefined
              ? `; packs: ${r.packsRemoved} of ${r.packsScanned ?? 0} removed, ${r.packsRepacked ?? 0} of them repacked (${formatBytes(r.bytesRepacked ?? 0)} copied into ${r.packsWritten ?? 0} new)` +
                (r.packsPutBack ? `, ${r.packsPutBack} put back` : '') +
                (r.corruptBlobs?.length ? `, ${r.corruptBlobs.length} corrupt blob(s) left in place (run verify)` : '')
              : '') +
            (r.trashPurged.length || r.trashKept.length ? `; deleted points purged ${r.trashPurged.length}, waiting ${r.trashKept.length}` : '') +
            (r.leasedPoints.length ? `; ${r.leasedPoints.length} point(s) being read (restore, download, verify)` : '') +
            (r.chunksKeptForLeases ? `, ${r.chunksKeptForLeases} chunks kept only for them` : '') +
            ` in ${r.seconds.toFixed(1)} s`,
        );
      } finally {
        await repository.close();
      }
    });
}
