// The policies' weekly boot checks on a real catalog and job queue (injectable clock): the
// newest point of each selected VM, not again within 7 days of the VM's last check, never while
// one is pending; outcomes as engine events; a policy's option validated and stored.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import pino from 'pino';
import type { JobResult } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { Catalog } from '../../backend/src/catalog';
import type { NewEvent, Tag, Vm } from '../../backend/src/engine';
import { JobQueue, type JobRunContext, type JobSpec } from '../../backend/src/jobs';
import { newPointId, type Manifest } from '../../backend/src/repository';
import { BOOT_CHECK_SCHEDULER, BootCheckScheduler, type SchedulerEngine, type StoredPolicy } from '../../backend/src/schedule';
import { jobsOf, policiesOf } from '../helpers/stores';

const vmId = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const MiB = 1 << 20;

class Engine implements SchedulerEngine {
  readonly events: NewEvent[] = [];
  readonly vms = [1, 2, 3].map((n) => ({ id: vmId(n), name: `vm0${n}`, hostId: undefined }) as Vm);
  findVms = (): Promise<Vm[]> => Promise.resolve(this.vms);
  findVmsByTag = (): Promise<Vm[]> => Promise.resolve(this.vms);
  findTagByName = (name: string): Promise<Tag | undefined> => Promise.resolve({ id: 't', name } as Tag);
  getVm = (id: string): Promise<Vm> => Promise.resolve(this.vms.find((v) => v.id === id)!);
  addEvent(ev: NewEvent): Promise<unknown> {
    this.events.push(ev);
    return Promise.resolve({});
  }
}

function manifest(vm: number, at: string): Manifest {
  return {
    format: 'olvm-backup-point', version: 1, pointId: newPointId(new Date(at)), vm: { key: vmId(vm), name: `vm0${vm}`, id: vmId(vm) }, createdAt: at, completedAt: at,
    parentPointId: null, consistency: 'crash', chunkSize: MiB, vmDefinition: null, lockedUntil: null, meta: {},
    disks: [{ device: 'vda', node: '', format: 'raw', virtualSize: MiB, mode: 'full', reason: 'first-backup', bitmap: '', bitmapPersistent: false, bytesRead: 0, chunksNew: 0, chunksReused: 0, chunksZero: 1, bytesStored: 0, index: { file: 'vda.index', sha256: 'a'.repeat(64), chunkCount: 1 } }],
  };
}

describe('weekly boot checks of policies', () => {
  let dir: string;
  let catalog: Catalog;
  let queue: JobQueue;
  let engine: Engine;
  let now: Date;
  /** The verdict each boot-checked VM's job gives (absent: the job fails). */
  const verdicts = new Map<string, 'ok' | 'failed'>();
  const pending: Array<() => void> = [];

  const runner = (ctx: JobRunContext): Promise<JobResult> =>
    new Promise((resolve, reject) => {
      pending.push(() => {
        const spec = ctx.spec as Extract<JobSpec, { kind: 'bootcheck' }>;
        const state = verdicts.get(ctx.job.vmId);
        if (!state) return reject(new Error('qemu-system-x86_64 is missing'));
        catalog.points.setBootCheck(spec.pointId, { state, at: now.toISOString() });
        resolve({ pointId: spec.pointId, bytesRead: 0, bytesStored: 0, durationMs: 1, disks: [], warnings: [], bootCheck: { state, reason: state === 'ok' ? 'the console showed a sign of life' : 'no bootable device', durationMs: 1, accel: 'tcg' } });
      });
    });
  const finishAll = async (): Promise<void> => {
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-bootsched-'));
    catalog = Catalog.open(path.join(dir, 'catalog.db'));
    queue = new JobQueue({ store: jobsOf(catalog), runner, limits: { global: 4, perHost: 4 } });
    queue.start();
    engine = new Engine();
    now = new Date('2026-04-06T12:00:00.000Z');
  });
  afterEach(async () => {
    await finishAll();
    await queue.stop(1000);
    catalog.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function policy(bootCheck: StoredPolicy['bootCheck'], enabled = true): StoredPolicy {
    const p: StoredPolicy = {
      id: vmId(900 + Math.floor(Math.random() * 1000)), name: `p-${bootCheck ?? 'none'}-${enabled}`, schedule: '0 3 * * *', timeZone: 'UTC', selection: { tag: 'nightly' },
      retention: { keepLast: 7, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, lockDays: 0, concurrency: 2, window: null, enabled,
      ...(bootCheck ? { bootCheck } : {}),
      createdAt: '2026-03-01T00:00:00.000Z', updatedAt: '2026-03-01T00:00:00.000Z', updatedBy: { id: 'u', name: 'admin' }, owner: { id: 'u', name: 'admin', groupIds: [], groupNames: [] },
      firedThrough: '2026-03-30T03:00:00.000Z', verifyFiredThrough: '2026-03-30T03:00:00.000Z',
    };
    policiesOf(catalog).insertPolicy(p);
    return p;
  }

  const scheduler = (): BootCheckScheduler =>
    new BootCheckScheduler({
      store: policiesOf(catalog),
      queue,
      newestPoint: (id) => catalog.points.lastPointByVm([id]).get(id),
      lastBootCheckAt: (id) => catalog.points.listPoints({ vmId: id }).reduce<string | null>((at, p) => (p.bootCheck && (at === null || p.bootCheck.at > at) ? p.bootCheck.at : at), null),
      bootCheckPending: (id) => jobsOf(catalog).listJobs({ vmIds: [id], states: ['queued', 'running'], limit: 10 }).jobs.some((j) => j.kind === 'bootcheck'),
      engine,
      log: pino({ level: 'silent' }),
      clock: () => now,
      intervalMs: 3_600_000,
    });
  const checks = (): Array<[string, string]> =>
    jobsOf(catalog)
      .listJobs({ limit: 100 })
      .jobs.filter((j) => j.kind === 'bootcheck')
      .map((j): [string, string] => [j.vmName, (jobsOf(catalog).jobSpec(j.id) as Extract<JobSpec, { kind: 'bootcheck' }>).pointId])
      .sort();

  test('the newest point of each selected vm once a week; never twice while pending; outcomes as engine events', async () => {
    const older = manifest(1, '2026-04-01T03:00:00.000Z');
    const newest1 = manifest(1, '2026-04-05T03:00:00.000Z');
    const newest2 = manifest(2, '2026-04-05T03:00:00.000Z');
    for (const m of [older, newest1, newest2]) catalog.points.indexPoint(m);
    // vm03 has no point: nothing to check; vm02 was checked 2 days ago: not due
    catalog.points.setBootCheck(newest2.pointId, { state: 'ok', at: '2026-04-04T12:00:00.000Z' });
    const p = policy('newest-weekly');
    policy('newest-weekly', false);
    policy('off');
    policy(undefined);
    const s = scheduler();
    s.start();
    await s.idle();
    expect(checks()).toEqual([['vm01', newest1.pointId]]);
    const [job] = jobsOf(catalog).listJobs({ limit: 10 }).jobs;
    expect(job?.requestedBy).toEqual(BOOT_CHECK_SCHEDULER);
    expect(jobsOf(catalog).jobSpec(job!.id)).toMatchObject({ origin: { policyId: p.id, policyName: p.name, trigger: 'schedule' } });
    // pending: the next pass queues nothing more
    s.tick();
    await s.idle();
    expect(checks()).toHaveLength(1);
    verdicts.set(vmId(1), 'failed');
    await finishAll();
    await s.idle();
    expect(engine.events.map((e) => [e.severity, e.vmId, e.description])).toEqual([['error', vmId(1), `olvm-backup policy "${p.name}": weekly boot check of vm vm01: restore point ${newest1.pointId} did not boot: failed (no bootable device)`]]);
    // 3 days later vm02's check is 5 days old, vm01's 0: nothing; 6 days after that both are due
    now = new Date('2026-04-09T12:00:00.000Z');
    s.tick();
    await s.idle();
    expect(checks()).toHaveLength(1);
    now = new Date('2026-04-15T12:00:00.000Z');
    s.tick();
    await s.idle();
    expect(checks()).toEqual([['vm01', newest1.pointId], ['vm01', newest1.pointId], ['vm02', newest2.pointId]].sort());
    await s.stop();
  });

  test('a check that could not run is not asked again within the week by this process; an event says why', async () => {
    const m = manifest(3, '2026-04-05T03:00:00.000Z');
    catalog.points.indexPoint(m);
    policy('newest-weekly');
    const s = scheduler();
    s.start();
    await s.idle();
    await finishAll();
    await s.idle();
    expect(engine.events.at(-1)).toMatchObject({ severity: 'error', vmId: vmId(3), description: expect.stringMatching(/weekly boot check of vm vm03 could not run: qemu-system-x86_64 is missing/) });
    now = new Date('2026-04-08T12:00:00.000Z');
    s.tick();
    await s.idle();
    expect(checks()).toHaveLength(1);
    await s.stop();
  });

  test("a policy's boot check option: off, newest-weekly, nothing else; stored only when on", () => {
    const base = { name: 'n', schedule: '0 3 * * *', timeZone: 'UTC', selection: { tag: 'x' }, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 } };
    expect(S.PolicyInput.parse({ ...base, bootCheck: 'newest-weekly' }).bootCheck).toBe('newest-weekly');
    expect(S.PolicyInput.parse({ ...base, bootCheck: 'off' }).bootCheck).toBe('off');
    expect(S.PolicyInput.safeParse({ ...base, bootCheck: 'daily' }).error?.issues[0]?.message).toBe('must be off or newest-weekly');
    const on = policy('newest-weekly');
    const off = policy('off');
    expect(policiesOf(catalog).getPolicy(on.id)?.bootCheck).toBe('newest-weekly');
    expect(policiesOf(catalog).getPolicy(off.id)).not.toHaveProperty('bootCheck');
  });
});
