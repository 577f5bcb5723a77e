/**
 * Restore points written straight through the repository API, as a backup writes them (no
 * QEMU): a full stores every chunk of an image, an incremental starts from the parent's index
 * and stores only the chunks it is told changed. Shared by the retention, GC and self-healing
 * tests.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isAppError, type ErrorCode } from '../../backend/src/errors';
import { newPointId, Repository, type CommitParams, type DiskIndex, type FullReason, type Manifest, type VmIdentity } from '../../backend/src/repository';

export const KiB = 1024;
export const CS = 256 * KiB;

export interface DiskImage {
  device: string;
  image: Buffer;
  /** Chunk numbers to store for an incremental (default: all for a full, none for an incremental). */
  dirty?: number[];
  /** Force a full of this disk even with a parent (e.g. parent-damaged). */
  full?: FullReason;
}

let lastSecond = 0;
/** Distinct, increasing point times for points written "now". */
export function tick(): Date {
  lastSecond = Math.max(lastSecond + 1000, Date.now());
  return new Date(lastSecond);
}

export async function writePoint(
  repo: Repository,
  vm: VmIdentity,
  disks: DiskImage[],
  opts: { at?: Date; parent?: Manifest; lockedUntil?: Date | string | null; slowMs?: number; commit?: Partial<Pick<CommitParams, 'meta' | 'vmDefinition' | 'consistency'>>; diskMeta?: Record<string, Record<string, unknown>> } = {},
): Promise<Manifest> {
  const at = opts.at ?? tick();
  const w = await repo.beginPoint({ vm, pointId: newPointId(at), createdAt: at, parentPointId: opts.parent?.pointId ?? null });
  try {
    const inputs = [];
    for (const d of disks) {
      let base: DiskIndex | undefined;
      if (opts.parent && !d.full) base = await repo.readIndex(opts.parent.pointId, d.device);
      const dw = w.beginDisk({ device: d.device, virtualSize: d.image.length, ...(base ? { base } : {}) });
      const chunks = base ? (d.dirty ?? []) : Array.from({ length: dw.count }, (_, i) => i);
      for (const i of chunks) {
        const start = i * CS;
        // a copy: putChunk may transfer the buffer to a worker thread
        await dw.putChunk(i, Buffer.from(d.image.subarray(start, start + dw.chunkLength(i))));
        if (opts.slowMs) await new Promise((r) => setTimeout(r, opts.slowMs));
      }
      await dw.finish();
      inputs.push({
        device: d.device,
        node: `node-${d.device}`,
        format: 'qcow2',
        mode: base ? ('incremental' as const) : ('full' as const),
        reason: base ? ('incremental' as const) : (d.full ?? (opts.parent ? 'forced' : 'first-backup')),
        bitmap: 'olvm-backup',
        bitmapPersistent: true,
        bytesRead: chunks.length * CS,
        ...(opts.diskMeta?.[d.device] ? { meta: opts.diskMeta[d.device] } : {}),
      });
    }
    return await w.commit({ disks: inputs, consistency: 'crash', vmDefinition: null, lockedUntil: opts.lockedUntil ?? null, ...opts.commit });
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/** Reads a disk of a point back through the repository, every chunk checked. */
export { readImage } from '../helpers/leasedRead';

/** A copy of `image` with the given chunks replaced by random data. */
export function mutate(image: Buffer, chunks: number[]): Buffer {
  const out = Buffer.from(image);
  for (const i of chunks) randomBytes(Math.min(CS, out.length - i * CS)).copy(out, i * CS);
  return out;
}

export async function chunkFiles(repoDir: string): Promise<string[]> {
  const out: string[] = [];
  const root = path.join(repoDir, 'chunks');
  for (const a of await fs.readdir(root)) {
    for (const b of await fs.readdir(path.join(root, a))) {
      for (const f of await fs.readdir(path.join(root, a, b))) out.push(path.join(root, a, b, f));
    }
  }
  return out.sort();
}

/** Sets every chunk file's mtime `ageMs` into the past (as if written long ago). */
export async function ageChunks(repoDir: string, ageMs: number): Promise<void> {
  const t = new Date(Date.now() - ageMs);
  for (const f of await chunkFiles(repoDir)) await fs.utimes(f, t, t);
}

export async function expectCode<T>(p: Promise<T>, code: ErrorCode): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (isAppError(err, code)) return err;
    throw new Error(`expected ${code}, got ${String(err)}`);
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/** For one describe block: fresh repositories (chunk size CS) in a temporary directory, all
 *  closed and removed after the block. Format 1: these suites age and count chunk files, the
 *  protocol of FORMAT.md §9/§14 (format 2's packs: gcPacks.test.ts, verifyPacks.test.ts). */
export function scratchRepositories(prefix: string): () => Promise<Repository> {
  return scratchRepositoriesWith(prefix, (dir) => Repository.init(dir, { version: 1, chunkSize: CS, workers: 2 })).newRepo;
}

/** Fresh repositories made by `make(dir)` in a temporary directory for one describe block, all
 *  closed and removed after it. */
export function scratchRepositoriesWith(prefix: string, make: (dir: string) => Promise<Repository>): { newRepo: () => Promise<Repository>; dir: () => string } {
  let dir: string;
  const repos: Repository[] = [];
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterAll(async () => {
    await Promise.all(repos.map((r) => r.close()));
    await fs.rm(dir, { recursive: true, force: true });
  });
  return {
    newRepo: async () => {
      const r = await make(path.join(dir, `repo-${repos.length}`));
      repos.push(r);
      return r;
    },
    dir: () => dir,
  };
}
