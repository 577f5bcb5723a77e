/**
 * Which account may write into a repository from the command line: the one that owns it
 * (config.json's owner). A command run as root — or as anyone else — in the service account's
 * repository would leave files and directories the service cannot change or remove (a chunk
 * directory, trash/, a damage mark), so the commands that write refuse, naming the owner and the
 * command to run instead, unless --allow-other-owner is given.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import type { Repository } from '../repository';
import { accountName, describeAccount, effectiveUid } from '../util/accounts';
import { ALLOW_OTHER_OWNER, type RepoFlags } from './repoFlags';

export { ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP } from './repoFlags';

/** Opens the repository --repo names for a command that writes into it (see the module
 *  comment; an s3:// repository as its one writer, the owner checked on its cache directory);
 *  an encrypted one with the passphrase of --passphrase-file or the environment (repoOpen.ts). */
export async function openForWriting(o: RepoFlags & { allowOtherOwner?: boolean }, extra: { bypassGovernance?: boolean } = {}): Promise<Repository> {
  const [{ repoSpecFrom, localDirOf }, { openSpec }] = await Promise.all([import('./repoSpec'), import('./repoOpen')]);
  const spec = await repoSpecFrom(o);
  const dir = localDirOf(spec);
  await checkOwner(path.join(dir, 'config.json'), spec.kind === 'local' ? `repository ${dir}` : `cache directory ${dir} of ${o.repo}`, o.allowOtherOwner === true);
  return openSpec(spec, 'writer', o, extra);
}

/** The same check without opening the repository (`repo upgrade`, which opens it its own way). */
export async function checkRepoOwner(dir: string, o: { allowOtherOwner?: boolean }): Promise<void> {
  await checkOwner(path.join(path.resolve(dir), 'config.json'), `repository ${path.resolve(dir)}`, o.allowOtherOwner === true);
}

/** `repo init` into a directory that exists already: it must be this account's too. */
export async function checkInitTarget(dir: string, o: { allowOtherOwner?: boolean }): Promise<void> {
  await checkOwner(path.resolve(dir), `directory ${path.resolve(dir)}`, o.allowOtherOwner === true);
}

async function checkOwner(file: string, what: string, allowed: boolean): Promise<void> {
  let uid: number;
  try {
    uid = (await fs.stat(file)).uid;
  } catch {
    return; // nothing there yet (or not readable): opening it reports that
  }
  const me = effectiveUid();
  if (uid === me || allowed) return;
  const owner = accountName(uid);
  const { shellCommand } = await import('../hosts');
  throw new AppError(
    'REPO_OTHER_OWNER',
    `${what} belongs to ${describeAccount(uid)} and this command runs as ${describeAccount(me)}: what it writes would belong to ` +
      `${accountName(me)} instead of the owner, and the backup service, which runs as the owner, might not be able to change or remove it. ` +
      `Run it as the owner: sudo -u ${owner} ${shellCommand(['olvm-backup', ...process.argv.slice(2)])} — or add ${ALLOW_OTHER_OWNER} if you mean it`,
    { details: { ownerUid: uid, owner, uid: me } },
  );
}
