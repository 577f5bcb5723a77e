import { randomBytes, randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineSim, type SimVm } from '../engine-sim';
import { FakeGuestAgent, type AgentLogEntry } from '../helpers/fakeGuestAgent';
import { requireTools } from '../helpers/tools';
import { until as waitUntil } from '../helpers/until';

// The engine simulator's backup API (reference/ovirt-api.md §4-§6) over plain HTTP, the way a
// client sees it: backups, checkpoints, backup image transfers and imageio extents, served from
// real QEMU (live: fleecing + QEMU's NBD server) and qemu-nbd (cold).

const MiB = 1024 * 1024;
const KiB = 1024;

type Json = Record<string, any>;

/** The named fields of each item, in order (what the assertions compare). */
const pick = (items: Json[], ...keys: string[]): unknown[][] => items.map((e) => keys.map((k): unknown => e[k]));

describe('engine simulator: backup API', () => {
  let dir: string;
  let sim: EngineSim;
  let api: string;
  let token: string;
  let vm: SimVm;
  let cow: string;
  let raw: string;

  async function login(user: string, password: string): Promise<string> {
    const res = await fetch(`${sim.baseUrl}/sso/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'password', scope: 'ovirt-app-api', username: user, password }).toString(),
    });
    return ((await res.json()) as Json)['access_token'] as string;
  }

  async function call(method: string, p: string, body?: unknown, as = token): Promise<{ status: number; body: Json }> {
    const headers: Record<string, string> = { Accept: 'application/json', Authorization: `Bearer ${as}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${api}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
  }

  const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => waitUntil(what, fn, timeoutMs);

  const disksBody = (...ids: string[]): Json => ({ disks: { disk: ids.map((id) => ({ id })) } });

  async function startBackup(body: Json, query = ''): Promise<Json> {
    const r = await call('POST', `/vms/${vm.id}/backups${query}`, body);
    expect(r).toMatchObject({ status: 201 });
    return r.body;
  }

  async function phase(id: string, want: string): Promise<Json> {
    return until(`backup ${id} ${want}`, async () => {
      const r = await call('GET', `/vms/${vm.id}/backups/${id}`);
      if (r.body['phase'] === 'failed' && want !== 'failed') throw new Error(`backup ${id} failed`);
      return r.body['phase'] === want ? r.body : undefined;
    });
  }

  async function finalize(id: string): Promise<void> {
    expect((await call('POST', `/vms/${vm.id}/backups/${id}/finalize`, {})).status).toBe(200);
    await phase(id, 'succeeded');
  }

  /** A backup transfer in `transferring`: its id and transfer_url. */
  async function transfer(backupId: string, diskId: string): Promise<{ id: string; url: string }> {
    // no format: the engine leaves it unset for a backup (raw, the NBD backend), even on qcow2
    const r = await call('POST', '/imagetransfers', { disk: { id: diskId }, backup: { id: backupId }, direction: 'download', inactivity_timeout: '60' });
    expect(r.status).toBe(201);
    const id = r.body['id'] as string;
    const url = await until('transferring', async () => {
      const t = await call('GET', `/imagetransfers/${id}`);
      return t.body['phase'] === 'transferring' ? (t.body['transfer_url'] as string) : undefined;
    });
    return { id, url };
  }

  async function endTransfer(id: string): Promise<void> {
    expect((await call('POST', `/imagetransfers/${id}/finalize`, {})).status).toBe(200);
    await until('finished', async () => ((await call('GET', `/imagetransfers/${id}`)).body['phase'] === 'finished_success' ? true : undefined));
  }

  async function getRange(url: string, start: number, length: number): Promise<Buffer> {
    const res = await fetch(url, { headers: { Range: `bytes=${start}-${start + length - 1}` } });
    expect(res.status).toBe(206);
    return Buffer.from(await res.arrayBuffer());
  }

  async function download(url: string): Promise<Buffer> {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  async function extents(url: string, context: 'zero' | 'dirty'): Promise<{ status: number; body: any }> {
    const res = await fetch(`${url}/extents?context=${context}`);
    const text = await res.text();
    return { status: res.status, body: res.status === 200 ? JSON.parse(text) : text };
  }

  beforeAll(async () => {
    requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'qemu-nbd');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'esimb-'));
    sim = await EngineSim.start({ dataDir: dir, seed: false });
    api = `${sim.baseUrl}/api`;
    token = await login(sim.users.admin.name, sim.users.admin.password);
    // StartVmBackup (scratch disks / volume bitmaps) first; the hybrid path has its own test
    sim.backup.setClusterVersion('4.6');
    vm = await sim.addVm({ name: 'bk01', disks: [{ sizeBytes: 8 * MiB, format: 'cow' }, { sizeBytes: 4 * MiB, format: 'raw' }], running: true });
    [cow, raw] = vm.disks.map((d) => d.id) as [string, string];
    await sim.guestWrite(vm.id, cow, 0, randomBytes(MiB));
    await sim.guestWrite(vm.id, raw, MiB, randomBytes(MiB));
  }, 120_000);

  afterAll(async () => {
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  let fullCheckpoint = '';

  test('live full backup: frozen at the backup instant, byte-exact through imageio; raw disk full, no dirty extents', async () => {
    const before = { cow: await sim.diskBytes(vm.id, cow), raw: await sim.diskBytes(vm.id, raw) };
    const id = randomUUID();
    const started = await startBackup({ id, description: 'full', ...disksBody(cow, raw) });
    expect(started).toMatchObject({ id, phase: 'initializing', description: 'full', vm: { id: vm.id } });
    expect(started['to_checkpoint_id']).toBeUndefined();
    const ready = await phase(id, 'ready');
    fullCheckpoint = ready['to_checkpoint_id'] as string;
    expect(fullCheckpoint).toMatch(/^[0-9a-f-]{36}$/);
    const disks = (await call('GET', `/vms/${vm.id}/backups/${id}/disks`)).body['disk'] as Json[];
    expect(pick(disks, 'id', 'backup_mode')).toEqual([[cow, 'full'], [raw, 'full']]);

    // guest writes after the backup instant must not show in the backup
    await sim.guestWrite(vm.id, cow, 0, randomBytes(64 * KiB));
    await sim.guestWrite(vm.id, raw, MiB, randomBytes(64 * KiB));
    for (const [diskId, want] of [[cow, before.cow], [raw, before.raw]] as const) {
      const t = await transfer(id, diskId);
      const opt = await fetch(t.url, { method: 'OPTIONS' });
      expect(opt.headers.get('allow')).toBe('OPTIONS,GET');
      expect(((await opt.json()) as Json)['features']).toEqual(['extents']);
      expect((await download(t.url)).equals(want)).toBe(true);
      const zero = await extents(t.url, 'zero');
      expect(zero.status).toBe(200);
      expect(zero.body.reduce((n: number, e: Json) => n + (e['length'] as number), 0)).toBe(want.length);
      const dirty = await extents(t.url, 'dirty');
      expect(dirty).toEqual({ status: 404, body: 'Ticket does not support dirty extents\n' });
      await endTransfer(t.id);
    }
    await finalize(id);
    const cps = (await call('GET', `/vms/${vm.id}/checkpoints`)).body['checkpoint'] as Json[];
    expect(pick(cps, 'id', 'state', 'parent_id')).toEqual([[fullCheckpoint, 'created', undefined]]);
    expect(sim.events().filter((e) => e.description.includes(id)).map((e) => e.code)).toEqual([10790, 10794, 10793]);
  }, 120_000);

  let incCheckpoint = '';

  test('live incremental: dirty extents exactly cover the writes since the checkpoint, data byte-exact', async () => {
    await sim.guestWrite(vm.id, cow, 2 * MiB, randomBytes(MiB));
    await sim.guestWrite(vm.id, cow, 5 * MiB, randomBytes(64 * KiB));
    const want = await sim.diskBytes(vm.id, cow);
    const b = await startBackup({ from_checkpoint_id: fullCheckpoint, ...disksBody(cow, raw) });
    const ready = await phase(b['id'] as string, 'ready');
    incCheckpoint = ready['to_checkpoint_id'] as string;
    expect(ready['from_checkpoint_id']).toBe(fullCheckpoint);
    const disks = (await call('GET', `/vms/${vm.id}/backups/${b['id']}/disks`)).body['disk'] as Json[];
    expect(pick(disks, 'backup_mode').flat()).toEqual(['incremental', 'full']);
    await sim.guestWrite(vm.id, cow, 7 * MiB, randomBytes(64 * KiB)); // after the instant: not dirty here
    const t = await transfer(b['id'] as string, cow);
    const dirty = (await extents(t.url, 'dirty')).body as Json[];
    // the 64 KiB write at 0 came after the previous backup's instant: it is dirty too
    const ranges = pick(dirty.filter((e) => e['dirty']), 'start', 'length', 'zero');
    expect(ranges).toEqual([[0, 64 * KiB, false], [2 * MiB, MiB, false], [5 * MiB, 64 * KiB, false]]);
    expect(dirty.reduce((n, e) => n + (e['length'] as number), 0)).toBe(8 * MiB);
    for (const [start, length] of ranges as Array<[number, number]>) expect((await getRange(t.url, start, length)).equals(want.subarray(start, start + length))).toBe(true);
    expect((await download(t.url)).equals(want)).toBe(true);
    const rt = await transfer(b['id'] as string, raw);
    expect((await extents(rt.url, 'dirty')).status).toBe(404);
    await endTransfer(rt.id);
    // finalize is refused while a transfer of the backup is unfinished
    const early = await call('POST', `/vms/${vm.id}/backups/${b['id']}/finalize`, {});
    expect(early).toEqual({ status: 409, body: { reason: 'Operation Failed', detail: '[Cannot stop VM backup. There is an active image transfer for VM backup]' } });
    await endTransfer(t.id);
    await finalize(b['id'] as string);
    const cps = (await call('GET', `/vms/${vm.id}/checkpoints`)).body['checkpoint'] as Json[];
    expect(pick(cps, 'id', 'parent_id')).toEqual([[fullCheckpoint, undefined], [incCheckpoint, fullCheckpoint]]);
  }, 120_000);

  test('the engine refusals: permits, locked VM, id in use, checkpoints, transfers before ready, format cow, stop without force', async () => {
    const viewer = await login(sim.users.viewer.name, sim.users.viewer.password);
    expect(await call('POST', `/vms/${vm.id}/backups`, disksBody(cow), viewer)).toEqual({ status: 403, body: { reason: 'Operation Failed', detail: '[User is not authorized to perform this action.]' } });
    expect((await call('POST', `/vms/${vm.id}/backups`, {})).body).toEqual({ reason: 'Incomplete parameters', detail: 'Backup [disks] required for add' });
    const unknownCp = randomUUID();
    expect((await call('POST', `/vms/${vm.id}/backups`, { from_checkpoint_id: unknownCp, ...disksBody(cow) })).body['detail']).toBe(`[Cannot backup VM. Checkpoint ID ${unknownCp} doesn't exist.]`);
    const ghost = randomUUID();
    expect((await call('POST', `/vms/${vm.id}/backups`, disksBody(ghost))).body['detail']).toBe(`[Cannot backup VM. The following disk(s) ID(s) does not exist: ${ghost}.]`);
    const other = await sim.addVm({ name: 'bk02', disks: [{ sizeBytes: MiB, format: 'cow' }] });
    const foreign = other.disks[0];
    expect((await call('POST', `/vms/${vm.id}/backups`, disksBody(cow, foreign?.id ?? ''))).body['detail']).toBe(`[Cannot backup VM. The following disk(s) are not attached to the VM bk01: ${foreign?.alias ?? ''}.]`);
    expect((await call('POST', `/vms/${vm.id}/backups`, { description: 'x'.repeat(1025), ...disksBody(cow) })).body['detail']).toBe("[Cannot backup VM. The VM backup description shouldn't contain more than 1024 characters.]");

    sim.backup.setStepDelay(1500);
    const b = await startBackup(disksBody(cow));
    const notReady = await call('POST', '/imagetransfers', { disk: { id: cow }, backup: { id: b['id'] }, direction: 'download', format: 'raw' });
    expect(notReady).toEqual({ status: 409, body: { reason: 'Operation Failed', detail: '[Cannot transfer Virtual Disk. The VM backup is not in READY phase, backup phase is INITIALIZING.]' } });
    const locked = await call('POST', `/vms/${vm.id}/backups`, disksBody(cow));
    expect(locked).toEqual({ status: 409, body: { reason: 'Operation Failed', detail: '[Cannot backup VM. The VM is during a backup operation.]' } });
    expect((await call('POST', `/vms/${vm.id}/backups`, { id: b['id'], ...disksBody(cow) })).body['detail']).toBe('[Cannot backup VM. The VM is during a backup operation.]');
    expect((await call('POST', `/vms/${vm.id}/stop`, {})).body['detail']).toBe('[Cannot stop VM. The VM is during a backup operation.]');
    expect((await call('DELETE', `/vms/${vm.id}/checkpoints/${fullCheckpoint}`)).body['detail']).toBe('[Cannot remove checkpoint. The VM is during a backup operation.]');
    sim.backup.setStepDelay(50);
    await phase(b['id'] as string, 'ready');
    const cowFormat = await call('POST', '/imagetransfers', { disk: { id: cow }, backup: { id: b['id'] }, direction: 'download', format: 'cow' });
    expect(cowFormat).toEqual({ status: 400, body: { reason: 'Operation Failed', detail: '[Cannot transfer Virtual Disk. The specified format is not applicable for VM backup.]' } });
    await finalize(b['id'] as string);
    expect((await call('POST', `/vms/${vm.id}/backups`, { id: b['id'], ...disksBody(cow) })).body['detail']).toBe(`[Cannot backup VM. The specified VM backup ID ${b['id']} already exists.]`);
  }, 120_000);

  test('a lost bitmap fails the incremental (full backup needed); a phase fault fails the backup; cleanup drops finished backups', async () => {
    await sim.backup.dropCheckpointBitmap(vm.id, incCheckpoint, cow);
    const b = await startBackup({ from_checkpoint_id: fullCheckpoint, ...disksBody(cow) });
    await phase(b['id'] as string, 'failed');
    expect(sim.events().filter((e) => e.description.includes(b['id'] as string)).map((e) => e.code)).toEqual([10790, 10791, 10792]);
    sim.backup.failNext('initializing');
    const f = await startBackup(disksBody(cow));
    await phase(f['id'] as string, 'failed');
    sim.backup.setCleanup({ failedMs: 0 });
    await until('cleanup', async () => ((await call('GET', `/vms/${vm.id}/backups/${f['id']}`)).status === 404 ? true : undefined));
    expect(sim.backup.phase(f['id'] as string)).toBeNull();
    sim.backup.setCleanup({ failedMs: 30 * 60_000 });
  }, 120_000);

  test('checkpoint removal is asynchronous and re-parents the child; invalid checkpoints are refused', async () => {
    const full = await startBackup(disksBody(cow));
    const c1 = (await phase(full['id'] as string, 'ready'))['to_checkpoint_id'] as string;
    await finalize(full['id'] as string);
    const inc = await startBackup({ from_checkpoint_id: c1, ...disksBody(cow) });
    const c2 = (await phase(inc['id'] as string, 'ready'))['to_checkpoint_id'] as string;
    await finalize(inc['id'] as string);
    const grandParent = (await call('GET', `/vms/${vm.id}/checkpoints/${c1}`)).body['parent_id'] as string;
    expect(grandParent).toMatch(/^[0-9a-f-]{36}$/);
    expect((await call('GET', `/vms/${vm.id}/checkpoints/${c2}`)).body['parent_id']).toBe(c1);
    expect((await call('DELETE', `/vms/${vm.id}/checkpoints/${c1}`)).status).toBe(200);
    await until('checkpoint gone', async () => ((await call('GET', `/vms/${vm.id}/checkpoints/${c1}`)).status === 404 ? true : undefined));
    expect((await call('GET', `/vms/${vm.id}/checkpoints/${c2}`)).body['parent_id']).toBe(grandParent);
    expect(sim.events().some((e) => e.code === 10797 && e.description.includes(c1))).toBe(true);
    sim.backup.invalidateCheckpoints(vm.id);
    expect((await call('POST', `/vms/${vm.id}/backups`, { from_checkpoint_id: c2, ...disksBody(cow) })).body['detail']).toBe(`[Cannot backup VM. Checkpoint ID ${c2} is invalid and should be removed.]`);
  }, 120_000);

  test('cold backup (VM down): bitmaps on the volume, byte-exact full and incremental, start refused meanwhile', async () => {
    // a fresh chain: a live full, writes, then the VM stops (QEMU stores the bitmap)
    const full = await startBackup(disksBody(cow, raw));
    const cp = (await phase(full['id'] as string, 'ready'))['to_checkpoint_id'] as string;
    await finalize(full['id'] as string);
    await sim.guestWrite(vm.id, cow, 3 * MiB, randomBytes(128 * KiB));
    expect((await call('POST', `/vms/${vm.id}/stop`, {})).status).toBe(200);
    const want = { cow: await sim.diskBytes(vm.id, cow), raw: await sim.diskBytes(vm.id, raw) };
    const b = await startBackup({ from_checkpoint_id: cp, ...disksBody(cow, raw) });
    await phase(b['id'] as string, 'ready');
    expect((await call('POST', `/vms/${vm.id}/start`, {})).body['detail']).toBe('[Cannot run VM. The VM is during a backup operation.]');
    const disks = (await call('GET', `/vms/${vm.id}/backups/${b['id']}/disks`)).body['disk'] as Json[];
    expect(pick(disks, 'backup_mode').flat()).toEqual(['incremental', 'full']);
    const t = await transfer(b['id'] as string, cow);
    const dirty = pick(((await extents(t.url, 'dirty')).body as Json[]).filter((e) => e['dirty']), 'start', 'length');
    expect(dirty).toEqual([[3 * MiB, 128 * KiB]]);
    expect((await download(t.url)).equals(want.cow)).toBe(true);
    await endTransfer(t.id);
    const rt = await transfer(b['id'] as string, raw);
    expect((await download(rt.url)).equals(want.raw)).toBe(true);
    await endTransfer(rt.id);
    await finalize(b['id'] as string);
    expect((await call('POST', `/vms/${vm.id}/start`, {})).status).toBe(200);
  }, 180_000);

  test('imageio faults: a 500, a truncated body, a hang, then the same ticket still serves', async () => {
    const b = await startBackup(disksBody(raw));
    const ready = await phase(b['id'] as string, 'ready');
    expect(ready['to_checkpoint_id']).toBeUndefined(); // only a raw disk: no checkpoint
    const want = await sim.diskBytes(vm.id, raw);
    const t = await transfer(b['id'] as string, raw);
    sim.backup.imageioFaultNext('error', t.id);
    expect((await fetch(t.url)).status).toBe(500);
    sim.backup.imageioFaultNext('truncate');
    await expect(fetch(t.url).then(async (r) => Buffer.from(await r.arrayBuffer()))).rejects.toThrow();
    sim.backup.imageioFaultNext('hang', t.id);
    await expect(fetch(t.url, { signal: AbortSignal.timeout(500) })).rejects.toThrow();
    expect((await download(t.url)).equals(want)).toBe(true);
    await endTransfer(t.id);
    await finalize(b['id'] as string);
  }, 120_000);

  test('require_consistency: fails without a guest agent, freezes and thaws through one; an XML request', async () => {
    const noAgent = await startBackup(disksBody(cow), '?require_consistency=true');
    await phase(noAgent['id'] as string, 'failed');
    const log: AgentLogEntry[] = [];
    const agent = await FakeGuestAgent.start(path.join(sim.qmpDir, `${vm.id}.qga`), log);
    try {
      const res = await fetch(`${api}/vms/${vm.id}/backups?require_consistency=true`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/xml', Accept: 'application/xml' },
        body: `<backup><description>xml</description><disks><disk id="${cow}"/></disks></backup>`,
      });
      expect(res.status).toBe(201);
      const id = /<backup href="[^"]+" id="([^"]+)">/.exec(await res.text())?.[1] ?? '';
      expect((await phase(id, 'ready'))['description']).toBe('xml');
      expect(log.map((e) => e.what).filter((w) => /fsfreeze-(freeze|thaw)/.test(w))).toEqual(['guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
      await finalize(id);
    } finally {
      await agent.stop();
    }
  }, 120_000);

  test('hybrid (cluster 4.7, the default): a snapshot holds the checkpoint, transfers read the frozen volume, finalize merges it back; live and down', async () => {
    sim.backup.setClusterVersion('4.7');
    try {
      const before = await sim.diskBytes(vm.id, cow);
      const full = await startBackup(disksBody(cow, raw));
      const ready = await phase(full['id'] as string, 'ready');
      const cp = ready['to_checkpoint_id'] as string;
      expect(ready['snapshot']).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      const snaps = (await call('GET', `/vms/${vm.id}/snapshots`)).body['snapshot'] as Json[];
      expect(pick(snaps, 'description', 'snapshot_type')).toEqual([['Auto-generated for Backup VM', 'regular'], ['Active VM', 'active']]);
      await sim.guestWrite(vm.id, cow, 6 * MiB, randomBytes(64 * KiB)); // after the snapshot
      const after = await sim.diskBytes(vm.id, cow);
      const t = await transfer(full['id'] as string, cow);
      expect((await download(t.url)).equals(before)).toBe(true);
      await endTransfer(t.id);
      await finalize(full['id'] as string);
      expect(pick((await call('GET', `/vms/${vm.id}/snapshots`)).body['snapshot'] as Json[], 'description')).toEqual([['Active VM']]);
      expect((await sim.diskBytes(vm.id, cow)).equals(after)).toBe(true);

      await sim.guestWrite(vm.id, cow, MiB, randomBytes(64 * KiB));
      const want = await sim.diskBytes(vm.id, cow);
      const inc = await startBackup({ from_checkpoint_id: cp, ...disksBody(cow) });
      const cp2 = (await phase(inc['id'] as string, 'ready'))['to_checkpoint_id'] as string;
      const it = await transfer(inc['id'] as string, cow);
      expect(pick(((await extents(it.url, 'dirty')).body as Json[]).filter((e) => e['dirty']), 'start', 'length')).toEqual([[MiB, 64 * KiB], [6 * MiB, 64 * KiB]]);
      expect((await download(it.url)).equals(want)).toBe(true);
      await endTransfer(it.id);
      await finalize(inc['id'] as string);

      const legacy = await startBackup(disksBody(cow), '?legacy=true');
      expect((await phase(legacy['id'] as string, 'ready'))['snapshot']).toBeUndefined();
      await finalize(legacy['id'] as string);
      // no guest agent here: HybridBackup does not take require_consistency, StartVmBackup does
      const loose = await startBackup(disksBody(cow), '?require_consistency=true');
      expect((await phase(loose['id'] as string, 'ready'))['snapshot']).toBeDefined();
      await finalize(loose['id'] as string);
      const strict = await startBackup(disksBody(cow), '?require_consistency=true&legacy=true');
      await phase(strict['id'] as string, 'failed');

      expect((await call('POST', `/vms/${vm.id}/stop`, {})).status).toBe(200);
      const down = await sim.diskBytes(vm.id, cow);
      const cold = await startBackup({ from_checkpoint_id: cp2, ...disksBody(cow) });
      await phase(cold['id'] as string, 'ready');
      const ct = await transfer(cold['id'] as string, cow);
      expect((await download(ct.url)).equals(down)).toBe(true);
      expect(((await extents(ct.url, 'dirty')).body as Json[]).every((e) => e['dirty'] === false)).toBe(true);
      await endTransfer(ct.id);
      await finalize(cold['id'] as string);
      expect((await sim.diskBytes(vm.id, cow)).equals(down)).toBe(true);
      expect((await call('POST', `/vms/${vm.id}/start`, {})).status).toBe(200);
    } finally {
      sim.backup.setClusterVersion('4.6');
    }
  }, 180_000);

  test('a VM that dies during a live backup: the backup ends failed at finalize', async () => {
    const b = await startBackup(disksBody(cow));
    await phase(b['id'] as string, 'ready');
    await sim.crashVm(vm.id);
    expect((await call('POST', `/vms/${vm.id}/backups/${b['id']}/finalize`, {})).status).toBe(200);
    await phase(b['id'] as string, 'failed');
    expect(sim.events().filter((e) => e.description.includes(b['id'] as string)).map((e) => e.code)).toEqual([10790, 10794, 10792]);
    expect((await call('POST', `/vms/${vm.id}/start`, {})).status).toBe(200);
  }, 120_000);
});
