import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadConfig } from '../../backend/src/config';
import { reportStore } from '../../backend/src/setup/storeReport';
import { EngineSim } from '../engine-sim';
import { runCli } from '../helpers/cli';
import { labCredentialsFile, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';
import { apiClient, serviceStartFailure, startServiceProcess, type ServiceProcessOptions } from '../helpers/serviceProcess';

// The service with repository.s3 on the Ceph lab (a real service process; the engine simulator
// runs no VM): it creates the repository in an empty prefix with Object Lock and holds the
// writer lease while it runs — the CLI's writer and a second service are refused, naming it,
// a reader is not — and releases it when it stops; setup's report shows the same.
jest.setTimeout(240_000);

let dir: string;
let sim: EngineSim;
let lab: S3LabEnv;
let bucket: string;
let credentials: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-svc-s3-'));
  lab = await s3Lab();
  sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true, seed: false });
  bucket = uniqueBucket('svc');
  credentials = await labCredentialsFile(lab, dir);
});
afterAll(async () => {
  await sim?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const yaml = (cache: string): string => `repository:\n  s3: { endpoint: "${lab.endpoint}", bucket: ${bucket}, prefix: svc, credentialsFile: ${credentials}, cacheDir: ${path.join(dir, cache)} }\n`;
const opts = (name: string): ServiceProcessOptions => ({ sim, dataDir: path.join(dir, name), config: yaml(`${name}-cache`), env: { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined } });
const cliEnv = (): Record<string, string | undefined> => ({ AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, HOME: path.join(dir, 'home') });
const repoArgs = (cache: string): string[] => ['--repo', `s3://${bucket}/svc`, '--s3-endpoint', lab.endpoint, '--cache', path.join(dir, cache)];

test('one service writes the prefix: created with Object Lock, the lease held while it runs and released when it stops', async () => {
  const svc = await startServiceProcess(opts('svc1'));
  let stopped = false;
  try {
    expect(svc.logs()).toMatch(/"msg":"creating the repository"/);
    expect(svc.logs()).toMatch(/"objectLock":\{"enabled":true.*"writer":\{"holder":"[^"]+:\d+:service".*"msg":"repository on object storage opened as its writer"/);

    const info = await runCli(['repo', 'info', '--json', ...repoArgs('reader-cache')], 60_000, cliEnv());
    expect({ code: info.code, stderr: info.stderr }).toEqual({ code: 0, stderr: '' });
    const st = JSON.parse(info.stdout) as { remote: unknown; store: { objectLock: { enabled: boolean }; writer: { holder: string; stale: boolean } } };
    expect(st.remote).toEqual({ location: `s3://${bucket}/svc`, mode: 'reader' });
    expect(st.store.objectLock.enabled).toBe(true);
    expect(st.store.writer).toMatchObject({ holder: expect.stringMatching(/:service$/), stale: false });

    // the command line's writer and a second service are refused, naming the holder
    const gc = await runCli(['gc', ...repoArgs('cli-cache')], 60_000, cliEnv());
    expect(gc.code).toBe(1);
    expect(gc.stderr).toMatch(/^olvm-backup: repository s3:\/\/.*\/svc has a writer already: \S+:\d+:service on /);
    const second = await serviceStartFailure(opts('svc2'));
    expect(second.code).not.toBe(0);
    expect(second.output).toMatch(/has a writer already: \S+:\d+:service/);

    // setup's report of the configured store
    const c = await loadConfig({ file: path.join(dir, 'svc1', 'config.yaml'), env: {}, overrides: { engine: { url: sim.baseUrl, user: 'x', passwordFile: path.join(dir, 'svc1', 'engine-password') }, hosts: { qmpDir: dir } } });
    const lines: string[] = [];
    await reportStore(c.repository.s3 as NonNullable<typeof c.repository.s3>, true, { say: (l) => lines.push(l) });
    expect(lines[0]).toBe(`repository: on object storage s3://${bucket}/svc at ${lab.endpoint} (cache ${path.join(dir, 'svc1-cache')})`);
    expect(lines[1]).toMatch(/^Object Lock: enabled/);
    expect(lines[2]).toMatch(/^writer lease: \S+:\d+:service on \S+ \(pid \d+\) since .*, last heartbeat /);

    expect(await svc.stop()).toBe(0);
    stopped = true;
    const after = await runCli(['repo', 'info', '--json', ...repoArgs('reader-cache')], 60_000, cliEnv());
    expect((JSON.parse(after.stdout) as { store: { writer: unknown } }).store.writer).toBeNull();
  } finally {
    if (!stopped) await svc.stop();
  }
  // the next start opens what is there
  const again = await startServiceProcess(opts('svc1'));
  try {
    expect(again.logs()).not.toMatch(/"msg":"creating the repository"/);
    // (an answer also means the service is past start-up and handles SIGTERM)
    expect((await apiClient(again.url).get('/api/v1/health')).status).toBe(200);
  } finally {
    expect(await again.stop()).toBe(0);
  }
});
