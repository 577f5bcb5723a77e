/** Points written the way the remote repository suites need them (FORMAT.md §24), and what the
 *  store and the cache hold. */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { newPointId, type Manifest, type Repository, type VmIdentity } from '../../backend/src/repository';
import type { RepoBackend } from './repoBackends';

export const CS = 256 * 1024;
export const VM: VmIdentity = { key: 'vm-remote', name: 'remote' };
const DISK = { node: 'n', format: 'qcow2', bitmap: 'b', bitmapPersistent: true } as const;

/** Writes a point of `image` (full, or incremental on `parent` changing `changed`). */
export async function writePoint(repo: Repository, image: Buffer, parent: Manifest | null, changed?: number[], lockedUntil?: Date): Promise<Manifest> {
  const base = parent ? await repo.readIndex(parent.pointId, 'vda') : undefined;
  const w = await repo.beginPoint({ vm: VM, pointId: newPointId(), createdAt: new Date(), parentPointId: parent?.pointId ?? null, ...(lockedUntil ? { lockedUntil } : {}) });
  const dw = w.beginDisk({ device: 'vda', virtualSize: image.length, ...(base ? { base } : {}) });
  const which = changed ?? Array.from({ length: image.length / CS }, (_, i) => i);
  await Promise.all(which.map((i) => dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)))));
  await dw.finish();
  return w.commit({
    disks: [{ device: 'vda', ...DISK, mode: parent ? 'incremental' : 'full', reason: parent ? 'incremental' : 'first-backup', bytesRead: which.length * CS }],
    consistency: 'crash',
    vmDefinition: null,
    ...(lockedUntil ? { lockedUntil } : {}),
  });
}

export async function cachePackSizes(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const ab of await fs.readdir(path.join(dir, 'packs'))) {
    for (const n of await fs.readdir(path.join(dir, 'packs', ab))) if (/^[0-9a-f]{64}$/.test(n)) out.push((await fs.stat(path.join(dir, 'packs', ab, n))).size);
  }
  return out;
}

export function changedImage(image: Buffer, changed: number[]): Buffer {
  const next = Buffer.from(image);
  for (const i of changed) randomBytes(CS).copy(next, i * CS);
  return next;
}

export async function storeObjects(backend: RepoBackend, dir: string, prefix: string): Promise<Array<{ key: string; size: number }>> {
  const store = await backend.store(dir);
  if (!store) return [];
  try {
    const out: Array<{ key: string; size: number }> = [];
    for await (const o of store.list(prefix)) out.push({ key: o.key, size: o.size });
    return out;
  } finally {
    await store.close();
  }
}

export async function storeKeys(backend: RepoBackend, dir: string, prefix: string): Promise<string[]> {
  return (await storeObjects(backend, dir, prefix)).map((o) => o.key);
}

