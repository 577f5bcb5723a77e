/**
 * `olvm-backup repo sync --from A --to B`: the off-site copy. Parses the flags, opens both ends
 * (repoOpen.ts openSyncEnd) and prints the report; the copying is the repository's
 * (repository/sync.ts).
 */
import type { Command } from 'commander';
import { AppError } from '../../errors';
import type { SyncReport } from '../../repository';
import { printJson, printLine } from '../output';
import { formatBytes, ProgressBar } from '../progressBar';
import { addS3StoreOptions, ALLOW_OTHER_OWNER, type S3Flags } from '../repoFlags';

/** Exit status of a run in which some point failed (the others were copied). */
export const EXIT_SYNC_INCOMPLETE = 3;

interface SyncFlags extends Omit<S3Flags, 'cache'> {
  from: string;
  to: string;
  vm?: string[];
  since?: string;
  fromPassphraseFile?: string;
  toPassphraseFile?: string;
  allowOtherOwner?: boolean;
  json?: boolean;
  fromCache?: string;
  toCache?: string;
}

export function registerRepoSync(repo: Command): void {
  const sync = repo
    .command('sync')
    .description(
      'copy restore points the destination lacks from one repository into another (same ids, metadata and retention locks; deduplicated at the destination; ' +
        'every copy read back and compared); run it again to resume an interrupted sync',
    )
    .requiredOption('--from <repo>', 'source repository: a directory or s3://BUCKET/PREFIX (read only: read-only credentials suffice)')
    .requiredOption('--to <repo>', 'destination repository (format 2): a directory or s3://BUCKET/PREFIX (opened as its one writer)')
    .option('--vm <key...>', 'only these VMs (their keys, as `olvm-backup points` lists them); repeatable')
    .option('--since <date>', 'only points created at or after this ISO 8601 date')
    .option('--from-passphrase-file <file>', 'passphrase of an encrypted source (or OLVM_BACKUP_REPO_PASSPHRASE)')
    .option('--to-passphrase-file <file>', 'passphrase of an encrypted destination (or OLVM_BACKUP_REPO_PASSPHRASE)')
    .option('--from-cache <dir>', 's3:// source: its local cache directory (default ~/.cache/olvm-backup/s3/BUCKET/PREFIX)')
    .option('--to-cache <dir>', 's3:// destination: its local cache directory (default ~/.cache/olvm-backup/s3/BUCKET/PREFIX)')
    .option(ALLOW_OTHER_OWNER, 'write into the destination even though it belongs to another account')
    .option('--json', 'print the report as JSON');
  addS3StoreOptions(sync, 's3:// ends').action(async (o: SyncFlags) => {
      let since: Date | undefined;
      if (o.since !== undefined) {
        since = new Date(o.since);
        if (Number.isNaN(since.getTime())) throw new AppError('INVALID_ARGUMENT', `--since: '${o.since}' is not a date`);
      }
      const [{ syncRepositories }, { checkSyncEnds, openSyncEnd, cliActor }, { checkRepoOwner }] = await Promise.all([
        import('../../repository'),
        import('../repoOpen'),
        import('../repoOwner'),
      ]);
      await checkSyncEnds(o.from, o.to);
      await checkRepoOwner(o.toCache ?? o.to, o);
      const { fromCache, toCache } = o;
      const s3: S3Flags = { s3Endpoint: o.s3Endpoint, s3Ca: o.s3Ca, s3Region: o.s3Region, s3PathStyle: o.s3PathStyle, s3VirtualHost: o.s3VirtualHost, s3Profile: o.s3Profile };
      const from = await openSyncEnd(o.from, {
        flag: '--from',
        mode: 'reader',
        s3: { ...s3, ...(fromCache !== undefined ? { cache: fromCache } : {}) },
        ...(o.fromPassphraseFile !== undefined ? { passphraseFile: o.fromPassphraseFile } : {}),
      });
      const bar = ProgressBar.forStderr(o.json === true);
      let report: SyncReport;
      try {
        const to = await openSyncEnd(o.to, {
          flag: '--to',
          mode: 'writer',
          s3: { ...s3, ...(toCache !== undefined ? { cache: toCache } : {}) },
          ...(o.toPassphraseFile !== undefined ? { passphraseFile: o.toPassphraseFile } : {}),
        });
        try {
          report = await syncRepositories(from, to, {
            ...(o.vm ? { vmKeys: o.vm } : {}),
            ...(since ? { since } : {}),
            holder: cliActor(),
            onProgress: (p) => bar.update(p.done, p.total, `point ${p.index + 1}/${p.points} ${p.pointId}`),
          });
        } finally {
          bar.finish();
          await to.close();
        }
      } finally {
        await from.close();
      }
      if (o.json) printJson(report);
      else printReport(report);
      if (!report.ok) process.exitCode = EXIT_SYNC_INCOMPLETE;
    });
}

function printReport(r: SyncReport): void {
  for (const p of r.points) {
    const what = `${p.pointId} (vm ${p.vmKey}, ${p.createdAt})`;
    if (p.status === 'copied') {
      const how = p.incremental ? `changes since ${p.parentPointId ?? '?'}` : 'whole';
      printLine(`copied  ${what}: ${how}, read ${formatBytes(p.bytesRead)}, stored ${formatBytes(p.bytesStored)}, verified${p.lockedUntil ? `, locked until ${p.lockedUntil}` : ''}`);
    } else if (p.status === 'skipped') {
      printLine(`skipped ${what}: ${p.reason ?? ''}${p.lockExtended ? `; lock extended to ${p.lockedUntil ?? '?'}` : ''}`);
    } else {
      printLine(`FAILED  ${what}: ${p.reason ?? p.code ?? 'failed'}`);
    }
  }
  printLine(
    `sync ${r.from} -> ${r.to}: ${r.copied} copied, ${r.skipped} skipped, ${r.failed} failed; read ${formatBytes(r.bytesRead)}, stored ${formatBytes(r.bytesStored)} in ${r.seconds.toFixed(1)} s`,
  );
}
