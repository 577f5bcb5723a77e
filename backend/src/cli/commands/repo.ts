import type { Command } from 'commander';
import { AppError } from '../../errors';
import type { UpgradeReport } from '../../repository';
import { DEFAULT_REPO_VERSION, REPO_ENCRYPTIONS, type RepoEncryptionName, type RepoVersion } from '../../repository/model';
import { printJson, printLine } from '../output';
import { parseSize } from '../parse';
import { formatBytes, ProgressBar } from '../progressBar';
import { ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP } from '../repoFlags';
import { registerRepoSync } from './repoSync';
import { EXIT_DAMAGED } from './verify';

interface InitFlags {
  repo: string;
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
  repo
    .command('init')
    .description('create an empty repository in a directory')
    .requiredOption('--repo <dir>', 'repository directory (created if missing; must be empty)')
    .option('--chunk-size <size>', 'chunk size, 256K to 4M, a power of two (default 1M for format 1, 256K for format 2)')
    .option('--format <n>', `repository format: 1 (a file per chunk) or 2 (pack files) (default ${DEFAULT_REPO_VERSION}; 2 with --encryption)`)
    .option('--pack-size <size>', 'format 2: pack file size, 1M to 512M (default 32M)')
    .option('--encryption <name>', `${REPO_ENCRYPTIONS.join(' or ')}: aes-256-gcm encrypts chunks, indexes and the VM's name and definition with a random key wrapped by a passphrase (format 2)`, 'none')
    .option('--passphrase-file <file>', "with --encryption: the new key's passphrase (or OLVM_BACKUP_REPO_PASSPHRASE)")
    .option(ALLOW_OTHER_OWNER, 'create it even though the (existing, empty) directory belongs to another account')
    .option('--json', 'print the result as JSON')
    .action(async (o: InitFlags) => {
      const encryption = parseEncryption(o.encryption);
      const version = o.format !== undefined ? parseFormat(o.format) : encryption === 'none' ? DEFAULT_REPO_VERSION : 2;
      if (encryption !== 'none' && version === 1) throw new AppError('INVALID_ARGUMENT', '--encryption needs --format 2 (format 1 stores every chunk in the clear)');
      const [{ Repository }, { checkInitTarget }, { readPassphrase }] = await Promise.all([import('../../repository'), import('../repoOwner'), import('../../config')]);
      await checkInitTarget(o.repo, o);
      const r = await Repository.init(o.repo, {
        ...(o.chunkSize !== undefined ? { chunkSize: parseSize(o.chunkSize, '--chunk-size') } : {}),
        version,
        ...(o.packSize !== undefined ? { packSize: parseSize(o.packSize, '--pack-size') } : {}),
        ...(encryption !== 'none' ? { encryption, passphrase: () => newPassphrase(readPassphrase, o.passphraseFile) } : {}),
      });
      try {
        const packSize = r.config.packSize;
        if (o.json) printJson({ repo: r.dir, format: r.formatVersion, chunkSize: r.chunkSize, ...(packSize ? { packSize } : {}), encrypted: r.encrypted });
        else {
          printLine(`initialized repository ${r.dir} (format ${r.formatVersion}, chunk size ${r.chunkSize} bytes${packSize ? `, pack size ${packSize} bytes` : ''}${r.encrypted ? ', encrypted' : ''})`);
          if (r.encrypted) {
            printLine('keep the passphrase: without it (or a paper copy of the key) nothing in this repository can be read');
            printLine(`print a paper copy now: olvm-backup key export --paper --repo ${r.dir}`);
          }
        }
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
      const [{ upgradeRepository }, { checkRepoOwner }, { cliActor }] = await Promise.all([import('../../repository'), import('../repoOwner'), import('../repoOpen')]);
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
