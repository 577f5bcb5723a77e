import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runBackup, type BackupRequest, type BackupResult } from '../../backend/src/backup';
import { LocalHost } from '../../backend/src/hosts';
import { QmpClient } from '../../backend/src/qmp';
import { Repository } from '../../backend/src/repository';
import { restoreToFile } from '../../backend/src/restore';
import { dataRanges } from '../../backend/src/restore/sparse';
import { TestVm, type DiskSpec } from './qemuVm';
import { initRepo, type RepoFormat } from './repoFormats';

/** A repository, a real QEMU VM and the product's own QMP connection to it. */
export class BackupFixture {
  qmp: QmpClient | undefined;
  private restoreSeq = 0;

  private constructor(readonly dir: string, readonly vm: TestVm, readonly repo: Repository) {}

  /** `format`: the repository's (test/helpers/repoFormats.ts); default: what `repo init` makes. */
  static async create(name: string, disks: DiskSpec[], format?: RepoFormat): Promise<BackupFixture> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `olvm-${name}-`));
    const repo = format ? await initRepo(path.join(dir, 'repo'), format) : await Repository.init(path.join(dir, 'repo'));
    const vm = await TestVm.create(path.join(dir, 'vm'), disks).catch(async (err: unknown) => {
      await repo.close();
      throw err;
    });
    return new BackupFixture(dir, vm, repo);
  }

  /** Runs one backup through the product's monitor connection (opened on first use). */
  async backup(extra: Partial<BackupRequest> = {}): Promise<BackupResult> {
    const qmp = await this.productQmp();
    return runBackup({
      vm: { key: 'vm1', name: 'vm1' },
      qmp,
      host: new LocalHost(),
      repository: this.repo,
      scratchDir: path.join(this.dir, 'scratch'),
      ...extra,
    });
  }

  async productQmp(): Promise<QmpClient> {
    if (!this.qmp || this.qmp.closed) this.qmp = await QmpClient.connectUnix(this.vm.productQmp);
    return this.qmp;
  }

  /** Restores a disk of a point to a raw file and returns its bytes. */
  restored(pointId: string, device: string): Promise<Buffer> {
    return restoredBytes(this.repo, pointId, device, path.join(this.dir, `restore-${this.restoreSeq++}.raw`));
  }

  /** Restarts QEMU (after quit or kill); the product must reconnect. */
  async restartVm(): Promise<void> {
    await this.qmp?.close();
    this.qmp = undefined;
    await this.vm.start();
  }

  async dispose(): Promise<void> {
    await this.qmp?.close().catch(() => undefined);
    await this.vm.dispose();
    await this.repo.close();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Restores a disk of a point to a raw file at `out` and returns its bytes, checking on the way
 * that exactly the non-zero 64 KiB blocks were written (holes stay holes).
 */
export async function restoredBytes(repo: Repository, pointId: string, device: string, out: string): Promise<Buffer> {
  const r = await restoreToFile({ repository: repo, pointId, device, out, format: 'raw' });
  try {
    const bytes = await fs.readFile(out);
    const dataBytes = dataRanges(bytes).reduce((n, [s, e]) => n + (e - s), 0);
    if (r.bytesWritten !== dataBytes) throw new Error(`restore wrote ${r.bytesWritten} bytes of data, the image holds ${dataBytes}`);
    if (r.virtualSize !== bytes.length) throw new Error(`restore reported size ${r.virtualSize}, file has ${bytes.length}`);
    return bytes;
  } finally {
    await fs.rm(out, { force: true });
  }
}

/** Byte-exact comparison with a readable failure: the first differing offset. */
export function expectSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: size ${actual.length} != expected ${expected.length}`);
  if (actual.equals(expected)) return;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  throw new Error(`${what}: first difference at byte ${i} (chunk ${Math.floor(i / (1 << 20))})`);
}
