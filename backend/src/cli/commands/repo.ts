import type { Command } from 'commander';
import { AppError } from '../../errors';
import type { UpgradeReport } from '../../repository';
import { DEFAULT_REPO_VERSION, REPO_ENCRYPTIONS, type RepoEncryptionName, type RepoVersion } from '../../repository/model';
import { printJson, printLine } from '../output';
import { parseSize } from '../parse';
import { formatBytes, ProgressBar } from '../progressBar';
import { addRepoOptions, addS3Options, ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP, REPO_HELP, type RepoFlags, type S3Flags } from '../repoFlags';
import { registerRepoSync } from './repoSync';
import { EXIT_DAMAGED } from './verify';

interface InitFlags extends S3Flags {
  repo: string;
  objectLock?: string;
  chunkSize?: string;
  format?: string;
  packSize?: string;
  encryption: string;
  passphraseFile?: string;
  allowOtherOwner?: boolean;
  json?: boolean;
}

export function registerRepo(program: Command): void {
  const repo = program.command('repo').description('manage a backup repository');
  addS3Options(
    repo
      .command('init')
      .description('create an empty repository in a directory, or on object storage (s3://BUCKET/PREFIX: the bucket is created with Object Lock when missing)')
      .requiredOption('--repo <location>', `${REPO_HELP}; a directory is created if missing and must be empty`),
  )
    .option('--object-lock <mode>', `s3:// repository: ${OBJECT_LOCKS.join(', ')} — the Object Lock mode of retention locks (default compliance: nobody can delete a locked object before its date); a new bucket is created with Object Lock unless off`)
    .option('--chunk-size <size>', 'chunk size, 256K to 4M, a power of two (default 1M for format 1, 256K for format 2)')
    .option('--format <n>', `repository format: 1 (a file per chunk) or 2 (pack files) (default ${DEFAULT_REPO_VERSION}; 2 with --encryption or on s3)`)
    .option('--pack-size <size>', 'format 2: pack file size, 1M to 512M (default 32M)')
    .option('--encryption <name>', `${REPO_ENCRYPTIONS.join(' or ')}: aes-256-gcm encrypts chunks, indexes and the VM's name and definition with a random key wrapped by a passphrase (format 2)`, 'none')
    .option('--passphrase-file <file>', "with --encryption: the new key's passphrase (or OLVM_BACKUP_REPO_PASSPHRASE)")
    .option(ALLOW_OTHER_OWNER, 'create it even though the (existing, empty) directory belongs to another account')
    .option('--json', 'print the result as JSON')
    .action(async (o: InitFlags) => {
      const encryption = parseEncryption(o.encryption);
      const [{ repoSpecFrom, localDirOf, describeSpec }, { checkInitTarget }, { initSpec }, { readPassphrase }] = await Promise.all([
        import('../repoSpec'),
        import('../repoOwner'),
        import('../repoOpen'),
        import('../../config'),
      ]);
      const { objectLock: lockFlag, ...flags } = o;
      const spec = await repoSpecFrom(flags);
      if (spec.kind === 'local' && lockFlag !== undefined) throw new AppError('INVALID_ARGUMENT', `--object-lock: only for an s3://BUCKET/PREFIX repository, and --repo ${o.repo} is a directory`);
      const objectLock = lockFlag === undefined ? undefined : parseObjectLock(lockFlag);
      const version = o.format !== undefined ? parseFormat(o.format) : encryption === 'none' && spec.kind === 'local' ? DEFAULT_REPO_VERSION : 2;
      if (encryption !== 'none' && version === 1) throw new AppError('INVALID_ARGUMENT', '--encryption needs --format 2 (format 1 stores every chunk in the clear)');
      if (spec.kind === 's3' && version === 1) throw new AppError('INVALID_ARGUMENT', '--format 1: only a format 2 repository can live on object storage');
      await checkInitTarget(localDirOf(spec), o);
      const r = await initSpec(spec, {
        ...(o.chunkSize !== undefined ? { chunkSize: parseSize(o.chunkSize, '--chunk-size') } : {}),
        version,
        ...(o.packSize !== undefined ? { packSize: parseSize(o.packSize, '--pack-size') } : {}),
        ...(encryption !== 'none' ? { encryption, passphrase: () => newPassphrase(readPassphrase, o.passphraseFile) } : {}),
        ...(objectLock !== undefined ? { objectLock } : {}),
      });
      try {
        const packSize = r.config.packSize;
        const where = describeSpec(spec);
        const lock = spec.kind === 's3' ? (objectLock ?? 'compliance') : undefined;
        if (o.json) {
          printJson({ repo: where, ...(spec.kind === 's3' ? { cache: r.dir, objectLock: lock } : {}), format: r.formatVersion, chunkSize: r.chunkSize, ...(packSize ? { packSize } : {}), encrypted: r.encrypted });
        } else {
          printLine(
            `initialized repository ${where} (format ${r.formatVersion}, chunk size ${r.chunkSize} bytes${packSize ? `, pack size ${packSize} bytes` : ''}${r.encrypted ? ', encrypted' : ''}` +
              `${spec.kind === 's3' ? `, Object Lock ${lock}, cache ${r.dir}` : ''})`,
          );
          if (r.encrypted) {
            printLine('keep the passphrase: without it (or a paper copy of the key) nothing in this repository can be read');
            printLine(`print a paper copy now: olvm-backup key export --paper --repo ${where}`);
          }
        }
      } finally {
        await r.close();
      }
    });
  addRepoOptions(repo.command('info').description("where the repository is, its format and encryption; on object storage its cache directory, the bucket's Object Lock and who holds the writer lease"))
    .option('--json', 'print it as JSON')
    .action(async (o: RepoFlags & { json?: boolean }) => {
      const [{ openSpec }, { repoSpecFrom }, { repoInfo }, { remoteStatus }] = await Promise.all([import('../repoOpen'), import('../repoSpec'), import('../repoInfo'), import('../../repository')]);
      const spec = await repoSpecFrom(o);
      const r = await openSpec(spec, 'reader', o);
      try {
        const info = repoInfo(r, spec.kind === 's3' ? await remoteStatus(spec.s3) : undefined);
        if (o.json) printJson(info);
        else for (const [k, v] of Object.entries(info)) printLine(`${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`);
      } finally {
        await r.close();
      }
    });
  repo
    .command('upgrade')
    .description(
      'convert a format-1 repository to format 2 in place (stop the backup service first); resumes an upgrade a crash interrupted, then verifies the whole repository',
    )
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--pack-size <size>', 'pack file size of the upgraded repository, 1M to 512M (default 32M; an interrupted upgrade keeps its own)')
    .option('--dry-run', 'only report what it would copy and convert, and what would stop it; changes nothing')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the report as JSON')
    .action(async (o: { repo: string; packSize?: string; dryRun?: boolean; allowOtherOwner?: boolean; json?: boolean }) => {
      const [{ upgradeRepository, parseRepoLocation }, { checkRepoOwner }, { cliActor }] = await Promise.all([import('../../repository'), import('../repoOwner'), import('../repoOpen')]);
      if (parseRepoLocation(o.repo).kind === 's3') throw new AppError('INVALID_ARGUMENT', `repo upgrade converts a format-1 repository in a directory; ${o.repo} is on object storage, which holds format 2 only`);
      if (!o.dryRun) await checkRepoOwner(o.repo, o);
      const bar = ProgressBar.forStderr(o.json === true);
      let report: UpgradeReport;
      try {
        report = await upgradeRepository(o.repo, {
          ...(o.packSize !== undefined ? { packSize: parseSize(o.packSize, '--pack-size') } : {}),
          dryRun: o.dryRun === true,
          actor: cliActor(),
          onProgress: (p) => bar.update(p.done, p.total, p.phase === 'verify' ? 'chunks verified' : p.phase === 'chunks' ? 'chunk files' : 'points'),
        });
      } finally {
        bar.finish();
      }
      if (o.json) printJson(report);
      else printUpgrade(report);
      const damaged = report.chunks.corrupt.length > 0 || report.points.problems.length > 0 || (report.verify !== null && !report.verify.ok);
      if (damaged && !report.dryRun) process.exitCode = EXIT_DAMAGED;
    });
  registerRepoSync(repo);
}

const OBJECT_LOCKS = ['compliance', 'governance', 'off'] as const;

function parseObjectLock(text: string): (typeof OBJECT_LOCKS)[number] {
  if ((OBJECT_LOCKS as readonly string[]).includes(text)) return text as (typeof OBJECT_LOCKS)[number];
  throw new AppError('INVALID_ARGUMENT', `--object-lock: '${text}' is not one of ${OBJECT_LOCKS.join(', ')}`);
}

function parseEncryption(text: string): RepoEncryptionName {
  if ((REPO_ENCRYPTIONS as readonly string[]).includes(text)) return text as RepoEncryptionName;
  throw new AppError('INVALID_ARGUMENT', `--encryption: '${text}' is not one of ${REPO_ENCRYPTIONS.join(', ')}`);
}

/** The new key's passphrase, with a message about making a repository (not opening one). */
async function newPassphrase(read: (o: { file?: string }) => Promise<string>, file: string | undefined): Promise<string> {
  try {
    return await read(file !== undefined ? { file } : {});
  } catch (err) {
    if (err instanceof AppError && err.code === 'REPO_KEY_REQUIRED') {
      throw new AppError('REPO_KEY_REQUIRED', 'an encrypted repository needs the passphrase of its first key: give --passphrase-file FILE or set OLVM_BACKUP_REPO_PASSPHRASE', { cause: err });
    }
    throw err;
  }
}

function parseFormat(text: string): RepoVersion {
  if (text === '1' || text === '2') return Number(text) as RepoVersion;
  throw new AppError('INVALID_ARGUMENT', `--format: '${text}' is not a repository format (1 or 2)`);
}

function printUpgrade(r: UpgradeReport): void {
  if (r.found === 'format-2' && !r.leftoversRemoved) {
    printLine(`repository ${r.repo} is format 2 already: nothing to do`);
    return;
  }
  const c = r.chunks;
  const p = r.points;
  if (r.dryRun) {
    printLine(`dry run: repository ${r.repo} is ${r.found === 'format-1' ? 'format 1' : `being upgraded to format 2 (started ${r.startedAt ?? '?'})`}`);
    printLine(`would copy ${c.copied} chunk files (${formatBytes(c.bytesCopied)}) into packs${r.packSize ? ` of ${formatBytes(r.packSize)}` : ''}; ${c.alreadyPacked} are in packs already`);
    printLine(`would convert ${p.converted} of ${p.seen} points (${p.alreadyConverted} converted already)`);
    if (r.freeBytes !== null) {
      const short = r.freeBytes < c.bytesCopied;
      printLine(`${short ? 'NOT ENOUGH SPACE: ' : ''}the copies need ${formatBytes(c.bytesCopied)} until the chunk files go at the end; ${formatBytes(r.freeBytes)} are free`);
    }
  } else if (r.found === 'format-2') {
    printLine(`repository ${r.repo} was upgraded to format 2; removed the format-1 chunk files an interrupted run left`);
  } else {
    printLine(`repository ${r.repo}: ${r.found === 'upgrading' ? `resumed the upgrade started ${r.startedAt ?? '?'}` : 'upgraded'} from format 1 to format 2 in ${r.seconds.toFixed(1)} s`);
    printLine(`chunks: ${c.copied} copied (${formatBytes(c.bytesCopied)}) into ${r.packs} packs of ${formatBytes(r.packSize ?? 0)}; ${c.alreadyPacked} were in packs already; ${c.corrupt.length} corrupt, left out`);
    printLine(`points: ${p.converted} converted, ${p.alreadyConverted} converted before, ${p.damaged} damaged`);
  }
  for (const x of c.corrupt) printLine(`CORRUPT chunk ${x.chunk}: ${x.message}${x.quarantined ? ` (moved to quarantine/${x.quarantined})` : ''}`);
  for (const x of p.problems) {
    printLine(`DAMAGED ${x.kind}: point ${x.pointId}${x.where === 'trash' ? ' (deleted, in trash/)' : ''}${x.vmKey ? ` of vm ${x.vmKey}` : ''}${x.device ? `, disk ${x.device}` : ''} - ${x.message}`);
  }
  if (r.dryRun && r.blockers.length > 0) printLine(`in use, the upgrade would refuse to start: ${r.blockers.join('; ')}`);
  const v = r.verify;
  if (!v) return;
  for (const x of v.problems) {
    const where = [`point ${x.pointId}`, x.device ? `disk ${x.device}` : '', x.offset !== null ? `offset ${x.offset}` : ''].filter(Boolean).join(', ');
    printLine(`verify: DAMAGED ${x.kind}: ${where}${x.chunk ? `, chunk ${x.chunk}` : ''} - ${x.message}`);
  }
  printLine(`verify: ${v.ok ? 'OK' : 'DAMAGED'}: ${v.pointsChecked} points, ${v.chunksChecked} chunks checked, ${v.problems.length} problems${v.marked.length > 0 ? `; marked damaged: ${v.marked.join(', ')}` : ''}`);
}
