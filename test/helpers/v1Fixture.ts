/**
 * Repositories with real points for the format-upgrade tests: images made of random,
 * compressible, zero and shared chunks, full and incremental points written through PointWriter
 * (an incremental puts only the chunks it changed, on the parent's index, as a backup does), and
 * the reference bytes of every point kept as chunk lists (chunks are shared between points, so
 * the reference costs what the repository stores, not points × disk size).
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { newPointId, type Repository, type VmIdentity } from '../../backend/src/repository';
import { readImage } from './leasedRead';

export const CS = 256 * 1024;

export interface RefPoint {
  pointId: string;
  vm: VmIdentity;
  /** Device → the image's chunks (the last one may be shorter). */
  disks: Record<string, Buffer[]>;
}

/** A chunk that compresses (text lines), so that chunk files are not all raw frames. */
export function textChunk(len: number, seed: string): Buffer {
  const line = Buffer.from(`${seed} ${randomBytes(6).toString('hex')} the quick brown fox jumps over the lazy dog\n`);
  const out = Buffer.alloc(len);
  for (let o = 0; o < len; o += line.length) line.copy(out, o, 0, Math.min(line.length, len - o));
  return out;
}

/** `n` chunks (the last `tail` bytes long when tail > 0): random, text, zero, and `shared` at 3. */
export function newImage(n: number, tail: number, shared: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  const count = tail > 0 ? n + 1 : n;
  for (let i = 0; i < count; i++) {
    const len = i === n ? tail : CS;
    if (i === 3 && len === CS) chunks.push(shared);
    else if (i % 5 === 1) chunks.push(Buffer.alloc(len));
    else if (i % 5 === 2) chunks.push(textChunk(len, `chunk ${i}`));
    else chunks.push(randomBytes(len));
  }
  return chunks;
}

/** `k` distinct chunks replaced by new random content of the same length. */
export function mutate(chunks: Buffer[], k: number): { chunks: Buffer[]; changed: number[] } {
  const out = [...chunks];
  const changed = new Set<number>();
  while (changed.size < Math.min(k, chunks.length)) changed.add(Math.floor(Math.random() * chunks.length));
  for (const i of changed) out[i] = randomBytes((chunks[i] as Buffer).length);
  return { chunks: out, changed: [...changed].sort((a, b) => a - b) };
}

/**
 * A point of `vm` with `disks`. With a parent, each disk of the same size is written as an
 * incremental on the parent's index (Repository.readIndex → beginDisk base): only `changed`
 * chunks are put.
 */
export async function writePoint(
  repo: Repository,
  vm: VmIdentity,
  parent: RefPoint | null,
  disks: Record<string, Buffer[]>,
  opts: { at: Date; changed?: Record<string, number[]>; lockedUntil?: Date },
): Promise<RefPoint> {
  const pointId = newPointId(opts.at);
  const w = await repo.beginPoint({ vm, pointId, createdAt: opts.at, parentPointId: parent?.pointId ?? null });
  const modes: Record<string, 'full' | 'incremental'> = {};
  try {
    for (const [device, chunks] of Object.entries(disks)) {
      const size = chunks.reduce((n, c) => n + c.length, 0);
      const parentChunks = parent?.disks[device];
      const incremental = parentChunks !== undefined && parentChunks.reduce((n, c) => n + c.length, 0) === size && opts.changed?.[device] !== undefined;
      const base = incremental && parent ? await repo.readIndex(parent.pointId, device) : undefined;
      const d = w.beginDisk({ device, virtualSize: size, ...(base ? { base } : {}) });
      const which = incremental ? (opts.changed?.[device] ?? []) : chunks.map((_, i) => i);
      // a copy: putChunk may hand the memory to a worker thread
      await Promise.all(which.map((i) => d.putChunk(i, Buffer.from(chunks[i] as Buffer))));
      await d.finish();
      modes[device] = incremental ? 'incremental' : 'full';
    }
    await w.commit({
      disks: Object.keys(disks).map((device) => ({
        device,
        node: `node-${device}`,
        format: 'qcow2',
        mode: modes[device] ?? 'full',
        reason: modes[device] === 'incremental' ? 'incremental' : 'first-backup',
        bitmap: `olvm-backup-${device}`,
        bitmapPersistent: true,
        bytesRead: 0,
        meta: { alias: `disk ${device}` },
      })),
      consistency: 'filesystem',
      vmDefinition: { kind: 'ovf', content: `<ovf vm="${vm.name}"/>` },
      meta: { test: 'upgrade', vm: vm.name },
      ...(opts.lockedUntil ? { lockedUntil: opts.lockedUntil } : {}),
    });
  } catch (err) {
    await w.abort();
    throw err;
  }
  return { pointId, vm, disks };
}

/** Every disk of every point read back (under a lease) and compared with its reference. */
export async function expectExact(repo: Repository, points: readonly RefPoint[]): Promise<void> {
  for (const p of points) {
    for (const [device, chunks] of Object.entries(p.disks)) {
      const got = await readImage(repo, p.pointId, device);
      const want = Buffer.concat(chunks);
      if (!got.equals(want)) throw new Error(`point ${p.pointId} disk ${device}: ${got.length} bytes read differ from the ${want.length} written`);
    }
  }
}

/** Every file under `dir` (relative paths), sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  await walk(dir);
  return out.sort();
}

/** A chain of `count` points of one VM: a full, then incrementals changing `changePer` chunks. */
export async function writeChain(
  repo: Repository,
  vm: VmIdentity,
  first: Record<string, Buffer[]>,
  count: number,
  changePer: number,
  start: Date,
): Promise<RefPoint[]> {
  const out: RefPoint[] = [];
  let parent: RefPoint | null = null;
  let disks = first;
  for (let i = 0; i < count; i++) {
    const at = new Date(start.getTime() + i * 60_000);
    let changed: Record<string, number[]> | undefined;
    if (parent) {
      const next: Record<string, Buffer[]> = {};
      changed = {};
      for (const [device, chunks] of Object.entries(disks)) {
        const m = mutate(chunks, changePer);
        next[device] = m.chunks;
        changed[device] = m.changed;
      }
      disks = next;
    }
    parent = await writePoint(repo, vm, parent, disks, { at, ...(changed ? { changed } : {}) });
    out.push(parent);
  }
  return out;
}
