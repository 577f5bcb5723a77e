import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { EngineSim, type SimVm } from '../engine-sim';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';

const MiB = 1 << 20;

/** Most jobs running at one instant, overall and per host, from their start/finish times. */
function peaks(jobs: Job[]): { overall: number; perHost: Map<string, number> } {
  const edges = jobs.flatMap((j) => [
    { t: Date.parse(j.startedAt!), d: 1, host: j.hostId ?? '' },
    { t: Date.parse(j.finishedAt!), d: -1, host: j.hostId ?? '' },
  ]);
  // at equal times a finish comes first: the queue starts the next job after the last one ended
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let overall = 0;
  let max = 0;
  const now = new Map<string, number>();
  const perHost = new Map<string, number>();
  for (const e of edges) {
    overall += e.d;
    max = Math.max(max, overall);
    now.set(e.host, (now.get(e.host) ?? 0) + e.d);
    perHost.set(e.host, Math.max(perHost.get(e.host) ?? 0, now.get(e.host)!));
  }
  return { overall: max, perHost };
}

describe('backup service: global and per-host limits with ten VMs asked at once (three hosts, real QEMU)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-limits-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), seed: false, hosts: 3 });
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), extraArgs: ['--limit-global', '3', '--limit-per-host', '2'] });
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('never more than 3 running in all nor 2 on one host; both limits reached; every job succeeds once', async () => {
    // six VMs on the first host, two on each other: the per-host limit has to hold back sim-host
    const hosts = sim.hostIds();
    const placement = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2];
    const vms: SimVm[] = [];
    for (const [i, h] of placement.entries()) {
      const vm = await sim.addVm({ name: `vm${String(i).padStart(2, '0')}`, disks: [{ sizeBytes: 16 * MiB, format: 'raw' }], running: true, host: hosts[h]!.name });
      await sim.guestWrite(vm.id, vm.disks[0]!.id, 0, randomBytes(12 * MiB));
      vms.push(sim.vmById(vm.id));
    }
    const admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    const started = await Promise.all(vms.map((vm) => admin.post(`/api/v1/vms/${vm.id}/backups`)));
    expect(started.map((r) => r.status)).toEqual(vms.map(() => 202));
    const ids = started.map((r) => S.StartBackupResponse.parse(r.body).job.id);

    const deadline = Date.now() + 300_000;
    let jobs: Job[] = [];
    for (;;) {
      jobs = S.JobList.parse((await admin.get('/api/v1/jobs?limit=50')).body).jobs.filter((j) => ids.includes(j.id));
      const running = jobs.filter((j) => j.state === 'running');
      expect(running.length).toBeLessThanOrEqual(3);
      if (jobs.every((j) => j.state === 'succeeded' || j.state === 'failed')) break;
      if (Date.now() > deadline) throw new Error(`jobs still pending: ${JSON.stringify(jobs.map((j) => j.state))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(jobs.map((j) => j.state)).toEqual(ids.map(() => 'succeeded'));
    expect(new Set(jobs.map((j) => j.result?.pointId)).size).toBe(10);
    for (const vm of vms) expect(jobs.find((j) => j.vmId === vm.id)?.hostId).toBe(vm.hostId);
    const p = peaks(jobs);
    expect(p.overall).toBe(3);
    expect(Math.max(...p.perHost.values())).toBe(2);
    expect(p.perHost.get(hosts[0]!.id)).toBe(2);
    const points = await Promise.all(vms.map(async (vm) => S.PointList.parse((await admin.get(`/api/v1/vms/${vm.id}/points`)).body).points.length));
    expect(points).toEqual(vms.map(() => 1));
  });
});
