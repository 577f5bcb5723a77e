/**
 * `olvm-backup key …`: the keys of an encrypted repository (format 2) — list them, add one for
 * another passphrase, remove one, change a passphrase, print the paper form of the master key,
 * and make a new key from that paper. Passphrases come from files or the environment only
 * (never from the command line, where `ps` would show them).
 */
import type { Command } from 'commander';
import { readFile } from 'fs/promises';
import { readPassphrase } from '../../config';
import { AppError } from '../../errors';
import { printJson, printLine, printTable } from '../output';
import { addS3Options, REPO_HELP, type S3Flags } from '../repoFlags';

interface RepoOpts extends S3Flags {
  repo: string;
  json?: boolean;
}
interface OpenOpts extends RepoOpts {
  passphraseFile?: string;
}
interface NewOpts {
  newPassphraseFile?: string;
  label?: string;
}

const PASSPHRASE_HELP = 'file holding the passphrase of one of its keys (or OLVM_BACKUP_REPO_PASSPHRASE)';
const NEW_PASSPHRASE_HELP = 'file holding the new passphrase (or OLVM_BACKUP_REPO_NEW_PASSPHRASE)';

const warn = (message: string): void => {
  process.stderr.write(`olvm-backup: warning: ${message}\n`);
};
const passphrase = (o: OpenOpts): Promise<string> =>
  readPassphrase({ ...(o.passphraseFile === undefined ? {} : { file: o.passphraseFile }), onWarning: warn });
const newPassphrase = (o: NewOpts): Promise<string> =>
  readPassphrase({ ...(o.newPassphraseFile === undefined ? {} : { file: o.newPassphraseFile }), purpose: 'new', onWarning: warn });
/** The repository module, loaded by an action (registering the commands must stay cheap). */
const repository = (): Promise<typeof import('../../repository')> => import('../../repository');

/**
 * The directory whose keys/ a command works on: --repo itself, or an s3:// repository's cache
 * after opening it (which brings config.json and keys/ from the store; an encrypted one asks for
 * the passphrase then) — as a reader to read, as the one writer to change a key, whose keys/ then
 * goes up to the store. `key recover` cannot open it (its passphrase is what was lost): it works
 * on a directory.
 */
async function keyDir<T>(o: RepoOpts & { passphraseFile?: string }, what: 'read' | 'write' | 'recover', fn: (dir: string) => Promise<T>): Promise<T> {
  const { parseRepoLocation } = await repository();
  const where = parseRepoLocation(o.repo);
  if (where.kind === 'local') {
    const { repoSpecFrom } = await import('../repoSpec');
    await repoSpecFrom(o); // refuses S3 flags beside a directory
    return fn(where.dir);
  }
  if (what === 'recover') throw new AppError('INVALID_ARGUMENT', `${o.repo}: key recover works on a directory (opening a repository on object storage needs a working key): recover in a copy of its cache directory, or add a key with key add where a passphrase still works`);
  if (what === 'read') {
    const { openRepository } = await import('../repoOpen');
    const r = await openRepository(o);
    try {
      return await fn(r.dir);
    } finally {
      await r.close();
    }
  }
  // a change: as the repository's one writer, the cache's keys/ then put into the store
  const { openForWriting } = await import('../repoOwner');
  const r = await openForWriting(o);
  try {
    const result = await fn(r.dir);
    await r.publishKeys();
    return result;
  } finally {
    await r.close();
  }
}

export function registerKey(program: Command): void {
  const key = program.command('key').description("manage the keys of an encrypted repository (each opens the repository's master key with its own passphrase)");

  key
    .command('list')
    .description('list the key files: id, creation time, label (no passphrase needed)')
    .requiredOption('--repo <location>', REPO_HELP)
    .option('--passphrase-file <file>', 's3:// repository only: a passphrase that opens it, to bring its keys from the store (or OLVM_BACKUP_REPO_PASSPHRASE)')
    .option('--json', 'print a JSON array')
    .action(async (o: OpenOpts) => {
      const { readRepoIdentity, listKeys } = await repository();
      const keys = await keyDir(o, 'read', async (dir) => listKeys(dir, (await readRepoIdentity(dir)).repositoryId));
      if (o.json) {
        printJson(keys);
        return;
      }
      printTable(
        ['KEY', 'CREATED', 'LABEL', 'PROBLEM'],
        keys.map((k) => [k.keyId, k.createdAt ?? '-', k.label ?? '', k.problem ?? '']),
      );
    });

  key
    .command('add')
    .description('add a key for another passphrase (the passphrase of an existing key opens the master key)')
    .requiredOption('--repo <location>', REPO_HELP)
    .option('--passphrase-file <file>', PASSPHRASE_HELP)
    .option('--new-passphrase-file <file>', NEW_PASSPHRASE_HELP)
    .option('--label <text>', 'what the key is for, e.g. "offsite admin"')
    .option('--json', 'print the result as JSON')
    .action(async (o: OpenOpts & NewOpts) => {
      const { readRepoIdentity, addKey } = await repository();
      const { id, keyId } = await keyDir(o, 'write', async (dir) => {
        const id = await readRepoIdentity(dir);
        const keyId = await addKey(dir, id.repositoryId, await passphrase(o), await newPassphrase(o), {
          keyCheck: id.encryption.keyCheck,
          ...(o.label === undefined ? {} : { label: o.label }),
        });
        return { id, keyId };
      });
      if (o.json) printJson({ repositoryId: id.repositoryId, keyId });
      else printLine(`added key ${keyId} to repository ${id.repositoryId}`);
    });

  key
    .command('remove')
    .description(
      'remove a key file; refused for the last key. The master key stays the same: whoever kept a copy of the file and knows its passphrase can still open the backups',
    )
    .argument('<keyId>', 'the key to remove (see key list)')
    .requiredOption('--repo <location>', REPO_HELP)
    .option('--passphrase-file <file>', PASSPHRASE_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (keyId: string, o: OpenOpts) => {
      const { readRepoIdentity, removeKey } = await repository();
      const repositoryId = await keyDir(o, 'write', async (dir) => {
        const { repositoryId, encryption } = await readRepoIdentity(dir);
        await removeKey(dir, repositoryId, await passphrase(o), keyId, { keyCheck: encryption.keyCheck });
        return repositoryId;
      });
      if (o.json) printJson({ repositoryId, removed: keyId });
      else printLine(`removed key ${keyId} from repository ${repositoryId}`);
    });

  key
    .command('change-passphrase')
    .description('wrap the key the passphrase opens under a new passphrase (the old one then opens nothing)')
    .requiredOption('--repo <location>', REPO_HELP)
    .option('--passphrase-file <file>', PASSPHRASE_HELP)
    .option('--new-passphrase-file <file>', NEW_PASSPHRASE_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (o: OpenOpts & NewOpts) => {
      const { readRepoIdentity, changePassphrase } = await repository();
      const { id, keyId } = await keyDir(o, 'write', async (dir) => {
        const id = await readRepoIdentity(dir);
        return { id, keyId: await changePassphrase(dir, id.repositoryId, await passphrase(o), await newPassphrase(o), { keyCheck: id.encryption.keyCheck }) };
      });
      if (o.json) printJson({ repositoryId: id.repositoryId, keyId });
      else printLine(`changed the passphrase of key ${keyId} of repository ${id.repositoryId}`);
    });

  key
    .command('export')
    .description('print the master key in a form to print and lock away (whoever has it can read every backup)')
    .requiredOption('--paper', 'the printable paper form (the only form there is)')
    .requiredOption('--repo <location>', REPO_HELP)
    .option('--passphrase-file <file>', PASSPHRASE_HELP)
    .option('--json', 'print {repositoryId, paper} as JSON')
    .action(async (o: OpenOpts) => {
      const { readRepoIdentity, unlockRepository, paperKey } = await repository();
      const { id, master } = await keyDir(o, 'read', async (dir) => {
        const id = await readRepoIdentity(dir);
        return { id, master: (await unlockRepository(dir, id.repositoryId, await passphrase(o), { keyCheck: id.encryption.keyCheck })).key };
      });
      const paper = paperKey(id.repositoryId, master);
      if (o.json) printJson({ repositoryId: id.repositoryId, paper });
      else process.stdout.write(paper);
    });

  key
    .command('recover')
    .description('make a new key, for a new passphrase, from the paper form of the master key (key export --paper)')
    .requiredOption('--paper <file>', 'the paper key as typed back in (spacing and case do not matter)')
    .requiredOption('--repo <location>', REPO_HELP)
    .option('--new-passphrase-file <file>', NEW_PASSPHRASE_HELP)
    .option('--label <text>', 'what the key is for')
    .option('--json', 'print the result as JSON')
    .action(async (o: RepoOpts & NewOpts & { paper: string }) => {
      const { readRepoIdentity, recoverWithPaper } = await repository();
      let text: string;
      try {
        text = await readFile(o.paper, 'utf8');
      } catch (err) {
        throw new AppError('INVALID_ARGUMENT', `--paper: cannot read ${o.paper}`, { cause: err });
      }
      const { id, keyId } = await keyDir(o, 'recover', async (dir) => {
        const id = await readRepoIdentity(dir);
        const keyId = await recoverWithPaper(dir, id.repositoryId, id.encryption.keyCheck, text, await newPassphrase(o), {
          ...(o.label === undefined ? {} : { label: o.label }),
        });
        return { id, keyId };
      });
      if (o.json) printJson({ repositoryId: id.repositoryId, keyId });
      else printLine(`made key ${keyId} of repository ${id.repositoryId} from the paper key`);
    });
  // the S3 flags of --repo s3://…, defined once (repoFlags.ts)
  for (const c of key.commands) addS3Options(c);
}
