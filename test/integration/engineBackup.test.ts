import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { engineVmBackup, type EngineVmBackupRequest } from '../../backend/src/backup';
import { EngineClient } from '../../backend/src/engine';
import { AppError } from '../../backend/src/errors';
import { LocalHost } from '../../backend/src/hosts';
import { Repository } from '../../backend/src/repository';
import { EngineSim } from '../engine-sim';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { runCli, type CliRun } from '../helpers/cli';

const MiB = 1 << 20;

describe('engine-aware backup against the engine simulator (real QEMU VMs)', () => {
  let dir: string;
  let sim: EngineSim;
  let repo: Repository;
  let engine: EngineClient;
  let passwordFile: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-engine-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    repo = await Repository.init(path.join(dir, 'repo'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', ...adminAuth() } });
    passwordFile = path.join(dir, 'password');
    await fs.writeFile(passwordFile, `${sim.users.admin.password}\n`, { mode: 0o600 });
  });
  afterAll(async () => {
    await engine?.close();
    await repo?.close();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function adminAuth(): { user: string; password: string } {
    return { user: sim.users.admin.name, password: sim.users.admin.password };
  }

  function backup(vmId: string, extra: Partial<EngineVmBackupRequest> = {}): ReturnType<typeof engineVmBackup> {
    // the QMP method (a VM that is down is started paused for it); engineMethod.test.ts has the engine's
    return engineVmBackup({ engine, vmId, repository: repo, host: new LocalHost({ qmpDir: sim.qmpDir }), scratchDir: dir, method: 'qmp', ...extra });
  }

  function restored(pointId: string, device: string): Promise<Buffer> {
    return restoredBytes(repo, pointId, device, path.join(dir, `r-${randomBytes(4).toString('hex')}.raw`));
  }

  test('a running vm: full then incremental, disks named by the engine, the OVF stored, events logged', async () => {
    const web = sim.vmByName('web01');
    expect(web.status).toBe('up');
    const first = await backup(web.id);
    expect(first.startedPaused).toBe(false);
    expect(first.manifest.vm).toEqual({ key: web.id, name: 'web01', id: web.id });
    expect(first.manifest.vmDefinition?.kind).toBe('ovf');
    expect(first.manifest.vmDefinition?.content).toContain('<ovf:Envelope');
    expect(first.manifest.disks.map((d) => d.device).sort()).toEqual(web.disks.map((d) => d.deviceId).sort());
    for (const d of first.manifest.disks) {
      const simDisk = web.disks.find((x) => x.deviceId === d.device);
      expect(d).toMatchObject({ mode: 'full', reason: 'first-backup', meta: { diskId: simDisk?.id, alias: simDisk?.alias } });
    }
    const atFirst = new Map<string, Buffer>();
    for (const d of web.disks) atFirst.set(d.deviceId, await sim.diskBytes(web.id, d.id));

    const changed = web.disks[0];
    if (!changed) throw new Error('web01 has no disk');
    await sim.guestWrite(web.id, changed.id, 5 * MiB, randomBytes(MiB));
    const second = await backup(web.id);
    for (const d of second.manifest.disks) expect(d.mode).toBe('incremental');
    expect(second.manifest.disks.find((d) => d.device === changed.deviceId)?.bytesRead).toBe(MiB);
    expect(second.manifest.disks.find((d) => d.device !== changed.deviceId)?.bytesRead).toBe(0);

    for (const d of web.disks) {
      expectSameBytes(await restored(first.manifest.pointId, d.deviceId), atFirst.get(d.deviceId) as Buffer, `first point, ${d.alias}`);
      expectSameBytes(await restored(second.manifest.pointId, d.deviceId), await sim.diskBytes(web.id, d.id), `second point, ${d.alias}`);
    }
    const mine = sim.events().filter((e) => e.origin === 'olvm-backup' && e.vmId === web.id);
    expect(mine.map((e) => e.severity)).toEqual(['normal', 'normal']);
    expect(mine[1]?.description).toContain(second.manifest.pointId);
  });

  test('a vm that is down is started paused, backed up without its backup=0 disk, and stopped again', async () => {
    const db = sim.vmByName('db01');
    expect(db.status).toBe('down');
    const excludedDisk = db.disks.find((d) => /backup=0/.test(d.description));
    const kept = db.disks.filter((d) => d !== excludedDisk);
    const r = await backup(db.id);
    expect(r.startedPaused).toBe(true);
    expect(sim.vmById(db.id).status).toBe('down');
    expect(r.manifest.disks.map((d) => d.device)).toEqual(kept.map((d) => d.deviceId));
    expect(r.excluded.map((e) => e.disk.disk.id)).toEqual([excludedDisk?.id]);
    expect(r.manifest.meta['engine']).toMatchObject({ startedPaused: true, excluded: [{ diskId: excludedDisk?.id, reason: 'backup=0' }] });
    for (const d of kept) expectSameBytes(await restored(r.manifest.pointId, d.deviceId), await sim.diskBytes(db.id, d.id), d.alias);
  });

  test('a backup that fails on a vm it started still stops the vm, logs an error event and leaves no point', async () => {
    const app = sim.vmByName('app01');
    const before = (await repo.listPoints({ vmKey: app.id })).length;
    const ctl = new AbortController();
    const err = await backup(app.id, { signal: ctl.signal, onProgress: (p) => p.bytesDone > 0 && ctl.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).message).toContain('app01');
    expect(sim.vmById(app.id).status).toBe('down');
    expect((await repo.listPoints({ vmKey: app.id })).length).toBe(before);
    const last = sim.events().filter((e) => e.origin === 'olvm-backup' && e.vmId === app.id).pop();
    expect(last?.severity).toBe('error');
    expect(last?.description).toMatch(/app01.*failed/);
    // and the next backup works
    const ok = await backup(app.id);
    expect(ok.manifest.disks[0]?.mode).toBe('full');
    expect(sim.vmById(app.id).status).toBe('down');
  });

  test('engine failures before and after the data: each ends in one error naming the vm, the vm as it was', async () => {
    const app = sim.vmByName('app01');
    sim.failNext({ method: 'POST', pathPrefix: `/vms/${app.id}/start`, status: 500 });
    const e500 = await backup(app.id).catch((e: unknown) => e);
    expect((e500 as AppError).message).toContain('app01');
    expect(sim.vmById(app.id).status).toBe('down');

    const quick = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, timeoutMs: 1500, auth: { kind: 'password', ...adminAuth() } });
    try {
      sim.hangNext({ method: 'POST', pathPrefix: `/vms/${app.id}/start` });
      const hung = await backup(app.id, { engine: quick }).catch((e: unknown) => e);
      expect((hung as AppError).code).toBe('ENGINE_TIMEOUT');
      expect((hung as AppError).message).toContain('app01');
      expect(sim.vmById(app.id).status).toBe('down');
    } finally {
      await quick.close();
    }

    const missing = await backup('00000000-1111-2222-3333-444444444444').catch((e: unknown) => e);
    expect((missing as AppError).message).toContain('00000000-1111-2222-3333-444444444444');
  });

  test('an engine that stops answering when the vm is to be stopped: the point stands, the operator is told', async () => {
    const app = sim.vmByName('app01');
    const quick = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, timeoutMs: 1500, auth: { kind: 'password', ...adminAuth() } });
    try {
      sim.hangNext({ method: 'POST', pathPrefix: `/vms/${app.id}/stop` });
      const r = await backup(app.id, { engine: quick });
      expect(r.warnings.join('\n')).toMatch(/app01 was started for the backup and could not be stopped again/);
      expect((await repo.readManifest(r.manifest.pointId)).pointId).toBe(r.manifest.pointId);
    } finally {
      await quick.close();
      await engine.stopVm(app.id);
      await engine.waitForVmStatus(app.id, ['down'], { timeoutMs: 30_000 });
    }
  });

  test('the command line: engine backup as JSON with disk ids and the excluded disk, show prints the OVF, bad inputs are one line', async () => {
    const db = sim.vmByName('db01');
    const args = [
      'backup', '--repo', repo.dir, '--engine', sim.baseUrl, '--engine-user', sim.users.admin.name,
      '--engine-password-file', passwordFile, '--engine-ca', sim.caFile as string, '--vm-id', db.id,
      '--qmp-dir', sim.qmpDir, '--scratch', dir, '--json',
    ];
    const r = await cli(args);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { point: string; vm: string; vmId: string; disks: Array<Record<string, unknown>> };
    expect(out).toMatchObject({ vm: 'db01', vmId: db.id });
    const excluded = db.disks.find((d) => /backup=0/.test(d.description));
    expect(out.disks).toContainEqual(expect.objectContaining({ diskId: excluded?.id, alias: excluded?.alias, mode: 'excluded', reason: 'backup=0' }));
    const kept = out.disks.find((d) => d['mode'] !== 'excluded');
    // no --method: `auto`, and db01 is down, so the engine method backs it up cold; its last point
    // was the QMP method's, so this one is a full (method-changed)
    expect(kept).toMatchObject({ mode: 'full', diskId: db.disks[0]?.id, alias: db.disks[0]?.alias });

    // the disk can be named as the engine names it
    const byAlias = path.join(dir, 'by-alias.raw');
    expect((await cli(['restore', '--repo', repo.dir, '--point', out.point, '--disk', db.disks[0]?.alias ?? '', '--out', byAlias])).code).toBe(0);
    expectSameBytes(await fs.readFile(byAlias), await sim.diskBytes(db.id, db.disks[0]?.id ?? ''), 'restored by alias');

    const show = JSON.parse((await cli(['show', '--repo', repo.dir, '--point', out.point, '--json'])).stdout) as { vmDefinition: { kind: string; content: string } };
    expect(show.vmDefinition.kind).toBe('ovf');
    expect(show.vmDefinition.content).toContain('db01');

    const bad: Array<[string[], RegExp]> = [
      [swap(args, '--engine', 'https://127.0.0.1:1/ovirt-engine'), /unreachable|connect|refused/i],
      [swap(args, '--engine-password-file', await writeTmp('wrong-password')), /admin@internal/],
      [swap(args, '--vm-id', '99999999-0000-0000-0000-000000000000'), /99999999-0000-0000-0000-000000000000/],
      [swap(args, '--engine-ca', await writeTmp('not a certificate')), /ca|certificate|tls/i],
    ];
    for (const [a, pattern] of bad) {
      const b = await cli(a);
      expect(b.code).not.toBe(0);
      const lines = b.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(pattern);
    }
    expect(sim.vmById(db.id).status).toBe('down');
  });

  test('a user who may not see the vm gets an error that does not reveal it', async () => {
    const app = sim.vmByName('app01');
    const plain = new EngineClient({
      baseUrl: sim.baseUrl,
      caFile: sim.caFile,
      filter: true,
      auth: { kind: 'password', user: sim.users.plain.name, password: sim.users.plain.password },
    });
    try {
      const err = await backup(app.id, { engine: plain }).catch((e: unknown) => e);
      expect((err as AppError).message).toContain(app.id);
      expect((err as AppError).message).not.toContain('app01');
      expect(sim.vmById(app.id).status).toBe('down');
    } finally {
      await plain.close();
    }
  });

  async function writeTmp(content: string): Promise<string> {
    const f = path.join(dir, `tmp-${randomBytes(4).toString('hex')}`);
    await fs.writeFile(f, content);
    return f;
  }
});

function swap(args: string[], flag: string, value: string): string[] {
  const out = [...args];
  out[out.indexOf(flag) + 1] = value;
  return out;
}

const cli = (args: string[]): Promise<CliRun> => runCli(args);
