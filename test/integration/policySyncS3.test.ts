import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as S from '../../backend/src/api/schemas';
import { initRepo, openRepo, Repository, type RepoSpec } from '../../backend/src/repository';
import { openStore } from '../../backend/src/repository/store/stores';
import { EngineSim } from '../engine-sim';
import { readImage } from '../helpers/leasedRead';
import { policyBody, syncJobOfRun } from '../helpers/policyRuns';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { policyRunDone } from '../helpers/serviceWaits';

/** A policy's syncTo on object storage (the 3-2-1 rule's off-site immutable copy): the service
 *  reaches s3://BUCKET/PREFIX with its config's sync.s3, as that store's writer, and the copied
 *  point keeps its retention lock as Object Lock. */
describe("a policy's syncTo = s3://BUCKET/PREFIX (engine simulator, real QEMU, a real service process, the Ceph lab)", () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess | undefined;
  let lab: S3LabEnv;
  const svcDir = (): string => path.join(dir, 'svc');

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-polsync-'));
    lab = await s3Lab();
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
  }, 600_000);

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('without S3 settings the policy is refused naming sync.s3; with them the run copies the new point byte-exact, locked in the store', async () => {
    const db = sim.vmByName('db01');
    const bucket = uniqueBucket('polsync');
    const offsite = `s3://${bucket}/offsite/olvm`;
    const creds = await labCredentialsFile(lab, dir);
    const spec = (cache: string): RepoSpec => ({ kind: 's3', s3: labS3Config(lab, bucket, creds, 'offsite/olvm'), cacheDir: path.join(dir, cache) });
    await (await initRepo(spec('init-cache'), { objectLock: 'compliance' })).close();

    // no sync.s3 and a local repository: nothing to reach the store with
    svc = await startServiceProcess({ sim, dataDir: svcDir() });
    let admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    const refused = await admin.post('/api/v1/policies', policyBody({ selection: { vmIds: [db.id] }, syncTo: offsite }));
    expect([refused.status, JSON.stringify(refused.body)]).toEqual([400, expect.stringMatching(/syncTo: .*no S3 connection settings.*sync\.s3/) as unknown]);
    const badUrl = await admin.post('/api/v1/policies', policyBody({ selection: { vmIds: [db.id] }, syncTo: 's3://No_Bucket/x' }));
    expect([badUrl.status, JSON.stringify(badUrl.body)]).toEqual([400, expect.stringContaining('syncTo') as unknown]);
    await svc.stop();

    svc = await startServiceProcess({ sim, dataDir: svcDir(), config: `sync:\n  s3:\n    endpoint: "${lab.endpoint}"\n    region: ${lab.region}\n    credentialsFile: ${creds}\n` });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    const b = policyBody({ name: 'offsite-s3', selection: { vmIds: [db.id] }, retention: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, lockDays: 1, syncTo: offsite });
    const saved = await admin.post('/api/v1/policies', b);
    expect(saved.status).toBe(201);
    const p = S.PolicySaveResponse.parse(saved.body).policy;
    expect(p.syncTo).toBe(offsite);
    const run = S.PolicyRunResponse.parse((await admin.post(`/api/v1/policies/${p.id}/run`)).body).run;
    expect((await policyRunDone(admin, p.id, run.id, 180_000)).state).toBe('succeeded');
    const sync = await syncJobOfRun(svcDir(), run.id);
    expect([sync?.state, sync?.error]).toEqual(['succeeded', null]);
    const pointId = sync?.result?.synced?.copied[0];
    expect(pointId).toBeDefined();

    // read back on "another machine": a fresh reader cache
    const src = await Repository.open(path.join(svcDir(), 'repository'));
    const dst = await openRepo(spec('reader-cache'), { mode: 'reader' });
    try {
      const [a, c] = [await src.readManifest(pointId as string), await dst.readManifest(pointId as string)];
      expect(a.lockedUntil).not.toBeNull();
      expect(c.lockedUntil).toBe(a.lockedUntil);
      expect([c.vm, c.createdAt, c.meta]).toEqual([a.vm, a.createdAt, a.meta]);
      for (const d of a.disks) expect((await readImage(dst, pointId as string, d.device)).equals(await readImage(src, pointId as string, d.device))).toBe(true);
    } finally {
      await Promise.all([src.close(), dst.close()]);
    }

    // in the store the point's manifest is under compliance retention until its lock
    const store = await openStore({ kind: 's3', s3: labS3Config(lab, bucket, creds, 'offsite/olvm'), requireObjectLock: true });
    try {
      const keys: string[] = [];
      for await (const o of store.list('points/')) keys.push(o.key);
      const manifest = keys.find((k) => k.includes(pointId as string) && k.endsWith('manifest.json'));
      expect(manifest).toBeDefined();
      const head = await store.head(manifest as string);
      expect(head?.retention?.mode).toBe('compliance');
      expect(head?.retention?.until.getTime()).toBeGreaterThanOrEqual(Date.parse(await lockedUntilOf(pointId as string)) - 1000);
      expect(await store.delete(manifest as string)).toMatchObject({ state: 'locked' });
    } finally {
      await store.close();
    }
  }, 600_000);

  async function lockedUntilOf(pointId: string): Promise<string> {
    const src = await Repository.open(path.join(svcDir(), 'repository'));
    try {
      return (await src.readManifest(pointId)).lockedUntil as string;
    } finally {
      await src.close();
    }
  }
});
