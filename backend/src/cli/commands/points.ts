import type { Command } from 'commander';
import { AppError } from '../../errors';
import type { Lease, Repository } from '../../repository';
import { printJson, printLine, printTable } from '../output';
import { formatBytes } from '../progressBar';
import { addRepoOptions, ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP, type RepoFlags } from '../repoFlags';

/** For the subcommands that write (delete, lock, unlock): refused in another account's
 *  repository unless --allow-other-owner (repoOwner.ts); `fn` gets who the audit log names. */
async function withRepo<T>(o: RepoFlags & { allowOtherOwner?: boolean; operator?: string }, fn: (r: Repository, actor: string) => Promise<T>, extra: { bypassGovernance?: boolean } = {}): Promise<T> {
  const { cliActor } = await import('../repoOpen');
  const { openForWriting } = await import('../repoOwner');
  const repository = await openForWriting(o, extra);
  try {
    return await fn(repository, cliActor(o.operator));
  } finally {
    await repository.close();
  }
}

export function registerPoints(program: Command): void {
  const points = program
    .command('points')
    .description('list restore points, oldest first; or delete, lock, unlock one (subcommands)')
    // `points delete --repo …`: the subcommand's options are its own (main.ts enables this on the program too)
    .enablePositionalOptions();
  addRepoOptions(points, { required: false })
    .option('--vm <name>', 'only the points of this VM')
    .option('--json', 'print a JSON array')
    .action(async (o: Partial<RepoFlags> & { vm?: string; json?: boolean }, cmd: Command) => {
      if (o.repo === undefined) cmd.error("error: required option '--repo <location>' not specified");
      const { openRepository } = await import('../repoOpen');
      const repository = await openRepository({ ...o, repo: o.repo });
      try {
        const points = await repository.listPoints(o.vm ? { vmKey: o.vm } : undefined);
        // who reads what now (restores, downloads, verifies): those points cannot be deleted meanwhile
        const leases = new Map<string, Lease[]>();
        for (const l of await repository.leases()) leases.set(l.pointId, [...(leases.get(l.pointId) ?? []), l]);
        if (o.json) {
          printJson(points.map((p) => ({ ...p, leases: (leases.get(p.pointId) ?? []).map(({ purpose, holder, startedAt, expiresAt }) => ({ purpose, holder, startedAt, expiresAt })) })));
          return;
        }
        const now = Date.now();
        printTable(
          ['POINT', 'VM', 'CREATED', 'DISKS', 'READ', 'STORED', 'LOCKED UNTIL', 'BEING READ'],
          points.map((p) => [
            p.pointId,
            p.vm.name,
            p.createdAt,
            p.disks.map((d) => `${d.device}:${d.mode}`).join(','),
            formatBytes(p.disks.reduce((n, d) => n + d.bytesRead, 0)),
            formatBytes(p.disks.reduce((n, d) => n + d.bytesStored, 0)),
            p.lockedUntil && Date.parse(p.lockedUntil) > now ? p.lockedUntil : '-',
            (leases.get(p.pointId) ?? []).map((l) => `${l.purpose} by ${l.holder} since ${l.startedAt} (lease until ${l.expiresAt})`).join('; ') || '-',
          ]),
        );
      } finally {
        await repository.close();
      }
    });

  addRepoOptions(points.command('delete').description('delete a restore point (refused while its retention lock runs or while it is being read); audited'))
    .requiredOption('--point <id>', 'restore point id')
    .requiredOption('--reason <text>', 'why (written to the audit log)')
    .option('--operator <name>', 'who asks (default: the login user)')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option(
      '--bypass-governance',
      "SUPPORT INTERVENTION, object storage only: delete a point unlocked by 'points unlock' whose Object Lock retention (governance mode) still runs; audited. Needs s3:BypassGovernanceRetention; compliance mode refuses until the date regardless",
    )
    .option('--json', 'print the result as JSON')
    .action(async (o: RepoFlags & { point: string; reason: string; operator?: string; allowOtherOwner?: boolean; bypassGovernance?: boolean; json?: boolean }) => {
      const bypass = o.bypassGovernance === true;
      await withRepo(o, async (r, actor) => {
        if (bypass) {
          if (!r.remote) throw new AppError('INVALID_ARGUMENT', `--bypass-governance: ${o.repo} is not on object storage (it has no Object Lock retention to bypass)`);
          process.stderr.write(
            'olvm-backup: WARNING: deleting with --bypass-governance removes Object Lock (governance) versions before their date; ' +
              'it is a support intervention, recorded in the repository audit log with your name and reason.\n',
          );
        }
        const res = await r.deletePoint(o.point, { reason: o.reason, actor });
        if (o.json) printJson(res);
        else printLine(`deleted point ${res.pointId} of vm ${res.vmKey}${res.deferred ? ' (its files wait in trash/ for the running backup of that vm or a reader that opened it just before; gc removes them)' : ''}; run gc to free its chunks`);
        // the store is opened with BypassGovernanceRetention only when the operator asks
      }, bypass ? { bypassGovernance: true } : {});
    });

  addRepoOptions(points.command('lock').description("extend a restore point's retention lock (a lock can only be lengthened); audited"))
    .requiredOption('--point <id>', 'restore point id')
    .requiredOption('--until <date>', 'ISO 8601 date or date-time (e.g. 2027-01-31 or 2027-01-31T00:00:00Z)')
    .option('--reason <text>', 'why (written to the audit log)')
    .option('--operator <name>', 'who asks (default: the login user)')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (o: RepoFlags & { point: string; until: string; reason?: string; operator?: string; allowOtherOwner?: boolean; json?: boolean }) => {
      const until = new Date(o.until);
      if (Number.isNaN(until.getTime())) throw new AppError('INVALID_ARGUMENT', `--until: '${o.until}' is not a date (use ISO 8601, e.g. 2027-01-31)`);
      await withRepo(o, async (r, actor) => {
        const m = await r.extendLock(o.point, until, { actor, ...(o.reason ? { reason: o.reason } : {}) });
        if (o.json) printJson({ pointId: m.pointId, lockedUntil: m.lockedUntil });
        else printLine(`point ${m.pointId} is locked until ${m.lockedUntil}`);
      });
    });

  addRepoOptions(points.command('unlock').description("SUPPORT INTERVENTION: clear a restore point's retention lock so it can be deleted; audited"))
    .requiredOption('--point <id>', 'restore point id')
    .requiredOption('--reason <text>', 'why (written to the audit log)')
    .option('--operator <name>', 'who does it (default: the login user)')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (o: RepoFlags & { point: string; reason: string; operator?: string; allowOtherOwner?: boolean; json?: boolean }) => {
      await withRepo(o, async (r, actor) => {
        process.stderr.write(
          'olvm-backup: WARNING: unlocking a retention-locked restore point is a support intervention. ' +
            'It is recorded in the repository audit log with your name and reason; the point can then be deleted.\n',
        );
        const before = await r.readManifest(o.point);
        const m = await r.unlockPoint(o.point, { reason: o.reason, operator: actor });
        if (o.json) printJson({ pointId: m.pointId, lockedUntil: m.lockedUntil, previousLockedUntil: before.lockedUntil });
        else printLine(`point ${m.pointId}: retention lock ${before.lockedUntil ? `(until ${before.lockedUntil}) ` : ''}cleared; recorded in the audit log`);
        // on object storage in governance mode, the operator's unlock is the one path that may
        // delete locked versions (BypassGovernanceRetention); compliance refuses regardless
      }, { bypassGovernance: true });
    });

  addRepoOptions(points.command('damaged').description('list the restore points verify marked damaged'))
    .option('--json', 'print a JSON array')
    .action(async (o: RepoFlags & { json?: boolean }) => {
      const { openRepository } = await import('../repoOpen');
      const r = await openRepository(o);
      try {
        const marks = await r.damagedPoints();
        if (o.json) {
          printJson(marks);
          return;
        }
        printTable(
          ['POINT', 'VM', 'MARKED', 'LAST VERIFIED', 'DISKS', 'PROBLEMS'],
          marks.map((m) => [m.pointId, m.vmKey ?? '?', m.markedAt, m.verifiedAt, m.devices === null ? '(whole point)' : m.devices.join(','), String(m.problems.length)]),
        );
      } finally {
        await r.close();
      }
    });
}
