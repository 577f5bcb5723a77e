/**
 * What the engine-method suites share: an unseeded engine simulator at a given cluster level (the
 * level picks the engine's backup mode), a repository, an admin engine client, and the checks
 * that every point restores to the bytes its disks held when it was taken.
 */
import { randomBytes, randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineClient } from '../../backend/src/engine';
import { Repository, type Manifest } from '../../backend/src/repository';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes, restoredBytes } from './backupFixture';
import { requireTools } from './tools';

export interface EngineMethodStack {
  dir: string;
  sim: EngineSim;
  repo: Repository;
  engine: EngineClient;
  /** point id → device → the disk's bytes when the point was taken */
  expected: Map<string, Map<string, Buffer>>;
  close(): Promise<void>;
}

/** `clusterVersion` 4.6: StartVmBackup (live scratch disks, cold volume bitmaps); 4.7: hybrid. */
export async function startEngineMethodStack(prefix: string, clusterVersion: string): Promise<EngineMethodStack> {
  requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'qemu-nbd');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  let sim: EngineSim | undefined;
  let repo: Repository | undefined;
  let engine: EngineClient | undefined;
  const close = async (): Promise<void> => {
    try {
      await engine?.close();
      await repo?.close();
      await sim?.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  try {
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), seed: false });
    sim.backup.setClusterVersion(clusterVersion);
    sim.backup.setStepDelay(20);
    repo = await Repository.init(path.join(dir, 'repo'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    return { dir, sim, repo, engine, expected: new Map(), close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** What each of the vm's disks holds now (by device), for a backup taken while the guest is idle. */
export async function diskBytesNow(sim: EngineSim, vm: SimVm): Promise<Map<string, Buffer>> {
  const now = new Map<string, Buffer>();
  for (const d of vm.disks) now.set(d.deviceId, await sim.diskBytes(vm.id, d.id));
  return now;
}

/** Guest writes of 4 KiB–256 KiB at random aligned offsets of one disk. */
export async function scribbleDisk(sim: EngineSim, vm: SimVm, disk: SimVm['disks'][number], writes: number): Promise<void> {
  for (let i = 0; i < writes; i++) {
    const len = randomInt(1, 64) * 4096;
    await sim.guestWrite(vm.id, disk.id, randomInt(0, (disk.provisionedSize - len) / 4096) * 4096, randomBytes(len));
  }
}

/** Every disk of the point restores to exactly the bytes remembered for it. */
export async function expectRestoresExact(s: EngineMethodStack, m: Manifest): Promise<void> {
  const want = s.expected.get(m.pointId);
  if (!want) throw new Error(`no reference for point ${m.pointId}`);
  for (const d of m.disks) {
    const got = await restoredBytes(s.repo, m.pointId, d.device, path.join(s.dir, `r-${randomBytes(4).toString('hex')}.raw`));
    expectSameBytes(got, want.get(d.device) as Buffer, `point ${m.pointId} disk ${d.device}`);
  }
}
