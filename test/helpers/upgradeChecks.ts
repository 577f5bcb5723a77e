/**
 * What the format-upgrade tests share: format-1 repositories in temporary directories (closed
 * and removed after the file's tests), and the checks of an upgraded repository's files.
 */
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, type VmIdentity } from '../../backend/src/repository';
import { listIndexFiles, readIndexFile } from '../../backend/src/repository/repoIndex';
import { CS, filesUnder } from './v1Fixture';
export { expectCode } from './expectCode';

export const MiB = 1024 * 1024;
const tmpDirs: string[] = [];
const open: Repository[] = [];

/** Call from the test file's afterAll. */
export async function cleanUp(): Promise<void> {
  for (const r of open.splice(0)) await r.close();
  for (const d of tmpDirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
}

export async function tempDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-upgrade-test-'));
  tmpDirs.push(d);
  return d;
}

export async function newV1Repo(): Promise<Repository> {
  const repo = await Repository.init(path.join(await tempDir(), 'repo'), { version: 1, chunkSize: CS });
  open.push(repo);
  return repo;
}

export async function reopen(dir: string): Promise<Repository> {
  const r = await Repository.open(dir);
  open.push(r);
  return r;
}


export const readJson = async <T>(file: string): Promise<T> => JSON.parse(await fs.readFile(file, 'utf8')) as T;
export const sha256Hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** Where format 1 keeps the chunk file of this content. */
export const chunkPath = (dir: string, chunk: Buffer): string => {
  const hex = sha256Hex(chunk);
  return path.join(dir, 'chunks', hex.slice(0, 2), hex.slice(2, 4), hex);
};
/** What every program but the upgrade says of a half-upgraded repository. */
export const UPGRADING = /is being upgraded to format 2 .*run `olvm-backup repo upgrade --repo .*` to finish/;

export const vmA: VmIdentity = { key: 'vm-a', name: 'alpha', id: '11111111-2222-3333-4444-555555555555' };
export const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };
export const vmC: VmIdentity = { key: 'vm-c', name: 'gamma' };
export const hoursAgo = (h: number): Date => new Date(Date.now() - h * 3600_000);

/** Files under points/ and trash/ whose name says they are a format-1 index kept aside, or a temp. */
export async function strays(dir: string): Promise<string[]> {
  const all = [...(await filesUnder(path.join(dir, 'points'))), ...(await filesUnder(path.join(dir, 'trash')))];
  return all.filter((f) => f.endsWith('.v1') || path.basename(f).startsWith('.'));
}

/** The repository index has one file, naming every pack on disk, each blob once. */
export async function expectTidyIndex(dir: string): Promise<void> {
  const names = await listIndexFiles(dir);
  expect(names).toHaveLength(1);
  const content = await readIndexFile(dir, names[0] as string);
  const onDisk = (await filesUnder(path.join(dir, 'packs'))).map((f) => path.basename(f)).sort();
  expect(content.packs.map((p) => p.name).sort()).toEqual(onDisk);
  const ids = content.packs.flatMap((p) => p.entries.map((e) => e.id.toString('hex')));
  expect(new Set(ids).size).toBe(ids.length);
}
