/**
 * `npm run bench:api [-- --seconds 20 --connections 50 --points 1000]`: the backup service
 * under load against the engine simulator. A repository holding `points` restore points of the
 * simulator's three VMs is indexed by the service at start-up; then `connections` clients list
 * VMs and each VM's points for `seconds`. Baseline in the same run: the same clients on
 * `/api/v1/whoami` (same HTTP, auth and cache path, no catalog work). Prints one JSON object.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import autocannon from 'autocannon';
import { newPointId, Repository, type VmIdentity } from '../../backend/src/repository';
import { EngineSim } from '../engine-sim';
import { ssoToken, startServiceProcess } from '../helpers/serviceProcess';
import { arg } from './common';

const KiB = 1024;

async function seedPoints(repoDir: string, vms: VmIdentity[], count: number): Promise<void> {
  const repo = await Repository.init(repoDir, { chunkSize: 256 * KiB });
  try {
    const start = Date.now() - count * 60_000;
    for (let i = 0; i < count; i++) {
      const vm = vms[i % vms.length]!;
      const at = new Date(start + i * 60_000);
      const w = await repo.beginPoint({ vm, pointId: newPointId(at), createdAt: at, parentPointId: null });
      const dw = w.beginDisk({ device: 'virtio-disk0', virtualSize: 4 * 256 * KiB });
      await dw.putChunk(i % 4, randomBytes(dw.chunkLength(i % 4)));
      await dw.finish();
      await w.commit({
        disks: [
          {
            device: 'virtio-disk0',
            node: 'libvirt-1-format',
            format: 'qcow2',
            mode: 'full',
            reason: 'first-backup',
            bitmap: `olvm-backup-${i}`,
            bitmapPersistent: true,
            bytesRead: 256 * KiB,
            meta: { diskId: `${vm.id ?? ''}`, alias: `${vm.name}_Disk1`, description: '' },
          },
        ],
        consistency: 'crash',
        vmDefinition: null,
        meta: { engine: { vmId: vm.id, startedPaused: false, excluded: [] } },
      });
    }
  } finally {
    await repo.close();
  }
}

async function load(url: string, token: string, paths: string[], seconds: number, connections: number): Promise<Record<string, number>> {
  const r = await autocannon({
    url,
    connections,
    duration: seconds,
    headers: { Authorization: `Bearer ${token}` },
    requests: paths.map((p) => ({ method: 'GET' as const, path: p })),
  });
  return {
    requests: r.requests.total,
    requestsPerSec: Math.round(r.requests.average),
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    latencyMaxMs: r.latency.max,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
  };
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 20);
  const connections = arg('connections', 50);
  const points = arg('points', 1000);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-apibench-'));
  const sim = await EngineSim.start({ dataDir: path.join(dir, 'sim') });
  try {
    const vms = ['web01', 'db01', 'app01'].map((n) => sim.vmByName(n)).map((v) => ({ key: v.id, name: v.name, id: v.id }));
    const seedStart = Date.now();
    await seedPoints(path.join(dir, 'svc', 'repository'), vms, points);
    const seedMs = Date.now() - seedStart;
    const svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), startTimeoutMs: 120_000 });
    try {
      const token = await ssoToken(sim, 'admin');
      const paths = ['/api/v1/vms', ...vms.map((v) => `/api/v1/vms/${v.id}/points`)];
      // one warm-up pass fills the identity and VM-list caches, as a portal page would
      await load(svc.url, token, paths, 2, 4);
      const baseline = await load(svc.url, token, ['/api/v1/whoami'], seconds, connections);
      const list = await load(svc.url, token, paths, seconds, connections);
      const check = (await (await fetch(`${svc.url}/api/v1/vms/${vms[0]!.id}/points?limit=1000`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { points: unknown[] };
      process.stdout.write(
        `${JSON.stringify(
          {
            benchmark: 'api-list-vms-and-points',
            pointsInRepository: points,
            pointsListedForOneVm: check.points.length,
            seedSeconds: Math.round(seedMs / 100) / 10,
            connections,
            seconds,
            list,
            baselineWhoami: baseline,
            listVsBaselineRequestsPerSec: Math.round((list.requestsPerSec! / baseline.requestsPerSec!) * 100) / 100,
            target: { errors: 0, latencyP99Ms: 100 },
            targetMet: list.errors === 0 && list.non2xx === 0 && list.timeouts === 0 && list.latencyP99Ms! < 100,
            machine: { cpus: os.cpus().length, node: process.version },
          },
          null,
          2,
        )}\n`,
      );
    } finally {
      await svc.stop();
    }
  } finally {
    await sim.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`api bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
