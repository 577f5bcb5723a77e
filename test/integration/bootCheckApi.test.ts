import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as S from '../../backend/src/api/schemas';
import { EngineSim, type SimVm } from '../engine-sim';
import { BOOT_MARKER, bootableDisk, disposeBootableDisk } from '../helpers/bootableDisk';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { backupDone, jobDone } from '../helpers/serviceWaits';
import { requireTools } from '../helpers/tools';

requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-nbd');
jest.setTimeout(600_000);

type Api = ReturnType<typeof apiClient>;

/** Width and height of a PNG (its IHDR), or of a binary PPM (P6) header. */
function imageSize(b: Buffer): { width: number; height: number } {
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) && b.toString('latin1', 12, 16) === 'IHDR') {
    return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(b.toString('latin1', 0, 64));
  if (!m) throw new Error(`not a png or ppm image (starts ${b.subarray(0, 8).toString('hex')})`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * Boot checks through the service: web01's first disk holds the bootable fixture
 * (test/helpers/bootableDisk.ts), backed up through the engine simulator; the operator (who may
 * download web01's disks) starts a boot check, which boots it in real QEMU under TCG; the
 * record, the screenshot and the point summary show it. A user who sees web01 but may not
 * download its disks is refused naming the permit; app01's point is 404 to the operator (he
 * cannot see app01), as is a point nobody has.
 */
describe('boot checks through the service (engine simulator, real QEMU, a real service process)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let operator: Api;
  let web: SimVm;
  let webPoint: string;
  let appPoint: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-bootcheck-api-'));
    const image = await fs.readFile(await bootableDisk());
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), config: 'bootCheck: { timeoutSeconds: 150 }\n' });
    const admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    operator = apiClient(svc.url, await ssoToken(sim, 'operator'));
    web = sim.vmByName('web01');
    // the fixture on web01's first disk (64 MiB: the rest stays zero, the partition ends at 32 MiB)
    await sim.guestWrite(web.id, web.disks[0]!.id, 0, image);
    webPoint = (await backupDone(admin, web.id)).result!.pointId;
    appPoint = (await backupDone(admin, sim.vmByName('app01').id)).result!.pointId;
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    await disposeBootableDisk();
  });

  test('the operator boot-checks a point of web01: the job boots it, the record, the screenshot and the point list show the verdict', async () => {
    expect((await operator.get(`/api/v1/points/${webPoint}/bootcheck`)).status).toBe(404);
    const points = S.PointList.parse((await operator.get(`/api/v1/vms/${web.id}/points`)).body).points;
    expect(points.find((p) => p.id === webPoint)?.bootCheck).toBeNull();

    const r = await operator.post(`/api/v1/points/${webPoint}/bootcheck`);
    expect([r.status, r.body]).toEqual([202, expect.anything()]);
    const started = S.StartBootCheckResponse.parse(r.body).job;
    expect(started).toMatchObject({ kind: 'bootcheck', vmId: web.id, vmName: 'web01' });
    const done = await jobDone(operator, started.id, 400_000);
    expect([done.state, done.error]).toEqual(['succeeded', null]);
    expect(done.result).toMatchObject({ pointId: webPoint, bootCheck: { state: 'ok', reason: 'the console showed a sign of life', accel: expect.stringMatching(/^(kvm|tcg)$/) } });
    const detail = S.JobDetail.parse((await operator.get(`/api/v1/jobs/${started.id}`)).body);
    expect(detail.log.map((l) => l.message)).toEqual(expect.arrayContaining([expect.stringMatching(/^booting restore point .* isolated VM \(no network\)/), expect.stringMatching(/^boot check passed under (kvm|tcg)/)]));

    const rec = S.BootCheckView.parse((await operator.get(`/api/v1/points/${webPoint}/bootcheck`)).body);
    expect(rec).toMatchObject({ pointId: webPoint, state: 'ok', matchedLine: BOOT_MARKER, noNetworkDevice: true, screenshot: true, disks: [web.disks[0]!.deviceId, web.disks[1]!.deviceId] });
    expect(Date.parse(rec.at)).toBeGreaterThanOrEqual(Date.parse(done.startedAt!));

    const shot = await fetch(`${svc.url}/api/v1/points/${webPoint}/bootcheck/screenshot`, { headers: { Authorization: `Bearer ${await ssoToken(sim, 'operator')}` } });
    expect(shot.status).toBe(200);
    const bytes = Buffer.from(await shot.arrayBuffer());
    expect(shot.headers.get('content-type')).toBe(bytes[0] === 0x89 ? 'image/png' : 'image/x-portable-pixmap');
    const size = imageSize(bytes);
    expect(size.width).toBeGreaterThanOrEqual(320);
    expect(size.height).toBeGreaterThanOrEqual(200);

    const after = S.PointList.parse((await operator.get(`/api/v1/vms/${web.id}/points`)).body).points;
    expect(after.find((p) => p.id === webPoint)?.bootCheck).toEqual({ state: 'ok', at: rec.at });
    expect(S.PointDetail.parse((await operator.get(`/api/v1/points/${webPoint}`)).body).bootCheck).toEqual({ state: 'ok', at: rec.at });
  });

  test('refusals: no download permit is 403 naming it; a VM the caller cannot see and an unknown point are 404; a bad body is 400', async () => {
    // user1 sees web01 (UserRole) but may not read its disks
    const plain = apiClient(svc.url, await ssoToken(sim, 'plain'));
    for (const [method, p] of [
      ['post', `/api/v1/points/${webPoint}/bootcheck`],
      ['get', `/api/v1/points/${webPoint}/bootcheck`],
      ['get', `/api/v1/points/${webPoint}/bootcheck/screenshot`],
    ] as const) {
      const r = method === 'post' ? await plain.post(p) : await plain.get(p);
      expect([p, r.status, r.body.error.code]).toEqual([p, 403, 'FORBIDDEN']);
      expect(r.body.error.message).toMatch(/may not (boot-check|see the boot check of) a restore point of vm web01: .*backup_disk on vm web01/);
      expect(r.body.error.message).not.toContain('app01');
    }
    // app01 is not the operator's: its point does not exist for him, whatever he asks
    const hidden = await operator.post(`/api/v1/points/${appPoint}/bootcheck`);
    const unknown = await operator.post('/api/v1/points/20200101T000000Z-0123456789ab/bootcheck');
    expect([hidden.status, hidden.body.error.code, unknown.status, unknown.body.error.code]).toEqual([404, 'NOT_FOUND', 404, 'NOT_FOUND']);
    expect(hidden.body.error.message).toBe(unknown.body.error.message.replace('20200101T000000Z-0123456789ab', appPoint));
    expect((await operator.get(`/api/v1/points/${appPoint}/bootcheck/screenshot`)).status).toBe(404);
    const bad = await operator.post(`/api/v1/points/${webPoint}/bootcheck`, { disk: 'nope' });
    expect([bad.status, bad.body.error.message]).toEqual([400, expect.stringContaining("disk must be one of the point's disks")]);
    expect((await operator.post(`/api/v1/points/${webPoint}/bootcheck`, { timeout: 5 })).status).toBe(400);
  });
});
