/**
 * Source repositories for the `repo sync` suites: a history of points of two VMs written through
 * the repository API as a backup writes them (full, then incrementals built on their parent),
 * with everything a manifest can carry (point and disk metadata, a VM definition, filesystem
 * consistency), and the check that a copied point is the same point, byte for byte.
 */
import { randomBytes } from 'crypto';
import type { Manifest, Repository, VmIdentity } from '../../backend/src/repository';
import { CS, mutate, readImage, writePoint, type DiskImage } from './retentionFixture';

export const VM1: VmIdentity = { key: 'vm-one', name: 'one', id: '5a1f0c2e-0000-4000-8000-000000000001' };
export const VM2: VmIdentity = { key: 'vm-two', name: 'two' };

/** The point's disks as they were backed up: device → image. */
export type Images = Map<string, Map<string, Buffer>>;

export interface History {
  /** VM1's three points (oldest first), then VM2's one. */
  points: Manifest[];
  images: Images;
}

/** Random data of `chunks` chunks and a partial last one of `tail` bytes, chunk 3 all zeros. */
export function image(chunks: number, tail = 12_345): Buffer {
  const b = randomBytes(chunks * CS + tail);
  if (chunks > 3) b.fill(0, 3 * CS, 4 * CS);
  return b;
}

const META = { jobId: 'job-17', requestedBy: 'admin@internal', tool: 'olvm-backup test', consistencyReason: 'guest agent froze 2 filesystems', method: 'engine', engine: { vmId: VM1.id, clusterId: 'c-1', hostId: null, startedPaused: false, excluded: [], unmappedDevices: [], backupId: 'b-1', checkpointId: 'cp-1' } };
const DISK_META = { vda: { diskId: 'disk-a', alias: 'root disk', description: 'the system' }, vdb: { diskId: 'disk-b', alias: 'data' } };

/**
 * VM1: a full of two disks, an incremental changing two chunks of vda and none of vdb, an
 * incremental changing vda's first and last chunks; VM2: a full of one disk. `size` chunks per
 * disk (plus a partial one); `lock` gives each point's retention lock (by its number, 0–3).
 */
export async function writeHistory(repo: Repository, o: { size?: number; lock?: (n: number) => Date | null } = {}): Promise<History> {
  const size = o.size ?? 9;
  const images: Images = new Map();
  const points: Manifest[] = [];
  const commit = { meta: META, vmDefinition: { kind: 'ovf', content: '<ovf:Envelope>one</ovf:Envelope>' }, consistency: 'filesystem' as const };
  const put = async (vm: VmIdentity, disks: DiskImage[], parent?: Manifest): Promise<void> => {
    const lockedUntil = o.lock?.(points.length) ?? null;
    const m = await writePoint(repo, vm, disks, { ...(parent ? { parent } : {}), lockedUntil, ...(vm === VM1 ? { commit, diskMeta: DISK_META } : {}) });
    points.push(m);
    images.set(m.pointId, new Map(disks.map((d) => [d.device, d.image])));
  };
  let vda = image(size);
  const vdb = image(size, 777);
  await put(VM1, [
    { device: 'vda', image: vda },
    { device: 'vdb', image: vdb },
  ]);
  vda = mutate(vda, [1, 4]);
  await put(VM1, [{ device: 'vda', image: vda, dirty: [1, 4] }, { device: 'vdb', image: vdb, dirty: [] }], points[0]);
  vda = mutate(vda, [0, size]);
  await put(VM1, [{ device: 'vda', image: vda, dirty: [0, size] }, { device: 'vdb', image: vdb, dirty: [] }], points[1]);
  await put(VM2, [{ device: 'sda', image: image(5, 1) }]);
  return { points, images };
}

/** What a copy keeps of its source's manifest: all but the writer's own accounting, the time
 *  it was written and its parent (the destination's previous point). */
export function copiedFacts(m: Manifest): unknown {
  return {
    pointId: m.pointId,
    vm: m.vm,
    createdAt: m.createdAt,
    consistency: m.consistency,
    vmDefinition: m.vmDefinition,
    lockedUntil: m.lockedUntil,
    meta: m.meta,
    disks: m.disks.map((d) => ({
      device: d.device,
      node: d.node,
      format: d.format,
      virtualSize: d.virtualSize,
      mode: d.mode,
      reason: d.reason,
      bitmap: d.bitmap,
      bitmapPersistent: d.bitmapPersistent,
      bytesRead: d.bytesRead,
      meta: d.meta,
    })),
  };
}

/** The destination has point `m` of the source: same facts, every disk byte-exact. */
export async function expectCopied(to: Repository, m: Manifest, images: Images, lockedUntil: string | null = m.lockedUntil): Promise<Manifest> {
  const b = await to.readManifest(m.pointId);
  expect(copiedFacts(b)).toEqual(copiedFacts({ ...m, lockedUntil }));
  for (const [device, want] of images.get(m.pointId) ?? new Map<string, Buffer>()) {
    const got = await readImage(to, m.pointId, device);
    expect([m.pointId, device, got.length, got.equals(want)]).toEqual([m.pointId, device, want.length, true]);
  }
  return b;
}
