import type { Command } from 'commander';
import { printJson, printLine } from '../output';
import { ProgressBar } from '../progressBar';
import { addRepoOptions, ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP, type RepoFlags } from '../repoFlags';

/** Exit status when verification found damage (distinct from 1, "could not run"). */
export const EXIT_DAMAGED = 3;

export function registerVerify(program: Command): void {
  addRepoOptions(
    program
      .command('verify')
      .description('re-read and re-hash every chunk of every point (or of one point); quarantines corrupt chunks and marks damaged points unless --no-repair'),
  )
    .option('--point <id>', 'only this restore point')
    .option('--no-repair', 'only report: no quarantine, no damage marks (writes nothing but its read leases)')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the report as JSON')
    .action(async (o: RepoFlags & { point?: string; repair: boolean; allowOtherOwner?: boolean; json?: boolean }) => {
      // with repair it writes marks, quarantines and audit records into the repository
      const { cliActor, openRepository } = await import('../repoOpen');
      const { openForWriting } = await import('../repoOwner');
      const repository = o.repair ? await openForWriting(o) : await openRepository(o);
      const bar = ProgressBar.forStderr(o.json === true);
      try {
        if (o.point) await repository.readManifest(o.point); // unknown point: a clear error, not an empty report
        const report = await repository.verify({
          ...(o.point ? { pointId: o.point } : {}),
          repair: o.repair,
          actor: cliActor(),
          onProgress: (done, total) => bar.update(done, total, 'chunks'),
        });
        bar.finish();
        if (o.json) {
          printJson(report);
        } else {
          for (const p of report.problems) {
            // format 2: problems of the repository's own files (packs, index files) name no point
            const where = [p.pointId !== null ? `point ${p.pointId}` : 'repository', p.device ? `disk ${p.device}` : '', p.offset !== null ? `offset ${p.offset}` : '', p.pack ? `pack ${p.pack}` : '']
              .filter(Boolean)
              .join(', ');
            printLine(`DAMAGED ${p.kind}: ${where}${p.chunk ? `, chunk ${p.chunk}` : ''} - ${p.message}`);
          }
          printLine(
            `${report.ok ? 'OK' : 'DAMAGED'}: ${report.pointsChecked} points, ${report.chunksChecked} chunks checked, ${report.problems.length} problems`,
          );
        }
        if (!report.ok) process.exitCode = EXIT_DAMAGED;
      } finally {
        bar.finish();
        await repository.close();
      }
    });
}
