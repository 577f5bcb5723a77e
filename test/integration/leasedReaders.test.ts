import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as S from '../../backend/src/api/schemas';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes } from '../helpers/backupFixture';
import { runCli } from '../helpers/cli';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { backupDone, eventually, jobDone, withRepository } from '../helpers/serviceWaits';

const MiB = 1 << 20;
type Api = ReturnType<typeof apiClient>;

/**
 * Nothing deleted that a reader still needs: while a download streams an old point and while a
 * restore job uploads it, the operator prunes that point away and collects garbage with no grace
 * from the backup server's shell — both readers finish byte-exact, because each holds a read lease
 * on the point (prune leaves it, gc keeps its chunks). Once they are done, the same prune removes it.
 */
describe('prune and gc while a download and a restore read the point (engine simulator, real QEMU, the CLI)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let web: SimVm;
  let old: string;
  const atOld = new Map<string, Buffer>();
  const repoDir = (): string => path.join(dir, 'svc', 'repository');

  /** Prune web01 down to its newest point, then gc with no grace, both from the shell. */
  async function pruneAndCollect(): Promise<{ prune: string; gc: string }> {
    const prune = await runCli(['prune', '--repo', repoDir(), '--vm', web.id, '--keep-last', '1', '--reason', 'leased readers test', '--json']);
    expect([prune.code, prune.stderr]).toEqual([0, '']);
    await new Promise((r) => setTimeout(r, 1_200)); // gc keeps what is younger than its clock slack
    const gc = await runCli(['gc', '--repo', repoDir(), '--grace', '0s', '--json']);
    expect([gc.code, gc.stderr]).toEqual([0, '']);
    return { prune: prune.stdout, gc: gc.stdout };
  }

  /** `p`, or an error naming `what` after `ms`. */
  async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-leased-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: false });
    // format 2: this suite runs gc on the service's repository (packs collected, FORMAT.md §20)
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), config: 'repository: { format: 2 }\n' });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    web = sim.vmByName('web01');
    // the old point holds data no later point has: pruning it would free its chunks
    await sim.guestWrite(web.id, web.disks[0]!.id, 8 * MiB, randomBytes(8 * MiB));
    old = (await backupDone(admin, web.id)).result!.pointId;
    for (const d of web.disks) atOld.set(d.deviceId, await sim.diskBytes(web.id, d.id));
    await sim.guestWrite(web.id, web.disks[0]!.id, 8 * MiB, randomBytes(8 * MiB));
    await backupDone(admin, web.id);
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('a download paused half-way survives prune and gc of its point, and completes byte-exact', async () => {
    const device = web.disks[0]!.deviceId;
    const ticket = S.DownloadTicket.parse((await admin.post(`/api/v1/points/${old}/disks/${device}/download`)).body);
    const res = await fetch(`${svc.url}${ticket.url}`);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const parts: Buffer[] = [];
    let got = 0;
    while (got < 4 * MiB) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the download ended early');
      parts.push(Buffer.from(value));
      got += value.byteLength;
    }
    // the reader stops reading; the point is pruned and gc runs meanwhile
    const { prune, gc } = await pruneAndCollect();
    expect(JSON.parse(prune)).toMatchObject({ leased: [old] });
    expect(JSON.parse(gc).leasedPoints).toContain(old);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(Buffer.from(value));
    }
    expectSameBytes(Buffer.concat(parts), atOld.get(device)!, 'the download of the old point, pruned and collected while it streamed');
  });

  test('a restore job of the point survives prune and gc while it uploads, and the disks it makes are the point', async () => {
    // its first write to imageio waits until prune and gc have run: however fast the restore
    // would be, it is mid-upload — reading the point, under its lease — while they run
    const upload = sim.holdNext({ method: 'PUT', pathPrefix: '/images/' });
    try {
      const started = await admin.post(`/api/v1/points/${old}/restore`, { mode: 'vm', vmName: 'web01-old' });
      expect(started.status).toBe(202);
      const jobId = started.body.job.id as string;
      // once it uploads, it reads the point
      await eventually(async () => {
        const j = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${jobId}`)).body);
        if (j.state !== 'queued' && j.state !== 'running') throw new Error(`the restore ended before the prune: ${JSON.stringify(j.error)}`);
        return j.progress?.phase === 'uploading' ? true : undefined;
      }, 120_000);
      await within(upload.held, 120_000, 'the restore\'s first write to imageio');
      const { prune } = await pruneAndCollect();
      expect(JSON.parse(prune)).toMatchObject({ leased: [old] });
      upload.release();
      const done = await jobDone(admin, jobId);
      expect(done.state).toBe('succeeded');
      const vm = sim.vmById(done.result!.restored!.vmId!);
      for (const d of done.result!.restored!.disks) {
        const simDisk = vm.disks.find((x) => x.id === d.diskId)!;
        expectSameBytes(await sim.diskBytes(vm.id, simDisk.id), atOld.get(d.device)!, `restored ${d.device} of the old point`);
      }
    } finally {
      upload.release();
    }
  });

  test('with no reader left, the same prune removes the point', async () => {
    const { prune } = await pruneAndCollect();
    expect(JSON.parse(prune)).toMatchObject({ removed: [old] });
    await expect(withRepository(repoDir(), (r) => r.readManifest(old))).rejects.toMatchObject({ code: 'REPO_POINT_NOT_FOUND' });
  });
});
