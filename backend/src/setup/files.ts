import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';

/** The account the service runs as: secrets become its own, config files readable by its group. */
export interface ServiceOwner {
  user: string;
  uid: number;
  gid: number;
}

/** `getent passwd NAME`; undefined when there is no such user. */
export function lookupUser(name: string): ServiceOwner | undefined {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const f = line.split(':');
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    return Number.isInteger(uid) && Number.isInteger(gid) ? { user: name, uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

export type FileClass = 'secret' | 'config' | 'data';

/**
 * Modes and owners of what setup writes, with the service account `owner`:
 * secrets (password, ssh key) owner-only 0600; config (YAML, hosts, CA) root:group 0640;
 * data (repository, data dir) the owner's, 0750. Without an owner (not root, or no such
 * account) the modes apply and the files stay the caller's.
 */
const MODES: Record<FileClass, { file: number; dir: number }> = {
  secret: { file: 0o600, dir: 0o750 },
  config: { file: 0o640, dir: 0o750 },
  data: { file: 0o640, dir: 0o750 },
};

export async function applyOwner(p: string, cls: FileClass, owner: ServiceOwner | undefined, isDir = false): Promise<void> {
  await fs.chmod(p, isDir ? MODES[cls].dir : MODES[cls].file);
  if (!owner) return;
  if (cls === 'config' || (cls === 'secret' && isDir)) await fs.chown(p, 0, owner.gid);
  else await fs.chown(p, owner.uid, owner.gid);
}

export type WriteResult = 'created' | 'updated' | 'unchanged';

/**
 * Writes `content` unless the file already holds exactly that: a temporary file beside it,
 * fsynced, its mode and owner set, then renamed over the old one, so a reader sees the old or
 * the new file, never half of one. The previous content of a non-secret file is kept as
 * `<file>.bak` (an old password is not kept).
 */
export async function writeFileSafely(file: string, content: string, cls: FileClass, owner: ServiceOwner | undefined): Promise<WriteResult> {
  const old = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (old === content) {
    await applyOwner(file, cls, owner);
    return 'unchanged';
  }
  await ensureDir(path.dirname(file), cls === 'data' ? 'data' : 'config', owner);
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  const h = await fs.open(tmp, 'wx', 0o600);
  try {
    await h.writeFile(content, 'utf8');
    await h.sync();
  } finally {
    await h.close();
  }
  try {
    await applyOwner(tmp, cls, owner);
    if (old !== undefined && cls !== 'secret') await fs.writeFile(`${file}.bak`, old, { mode: 0o600 });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return old === undefined ? 'created' : 'updated';
}

/** mkdir -p; a directory created here gets the class's mode and owner, an existing one is left alone. */
export async function ensureDir(dir: string, cls: FileClass, owner: ServiceOwner | undefined): Promise<boolean> {
  const exists = await fs.stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (exists) return false;
  await ensureDir(path.dirname(dir), cls, owner);
  await fs.mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await applyOwner(dir, cls, owner, true);
  return true;
}
