import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as S from '../../backend/src/api/schemas';
import { Repository } from '../../backend/src/repository';
import { EngineSim } from '../engine-sim';
import { apiClient, serviceStartFailure, startServiceProcess, type ServiceProcessOptions } from '../helpers/serviceProcess';

const PASSPHRASE = 'the service passphrase, 2026';
const WRONG = 'not the passphrase at all';

/**
 * The service's embedded repository encrypted (repository.encryption, the passphrase from
 * OLVM_BACKUP_REPO_PASSPHRASE or repository.passphraseFile): made encrypted at the first start,
 * opened with the passphrase at the next; a wrong or missing passphrase stops the start-up, like
 * a bad engine password, with a message naming where the passphrase is configured and never the
 * passphrase. No VM runs (the simulator is not seeded) and nothing is backed up.
 */
describe('the service with an encrypted repository (engine simulator, a real service process)', () => {
  let dir: string;
  let sim: EngineSim;

  const svcDir = (): string => path.join(dir, 'svc');
  const repoDir = (): string => path.join(svcDir(), 'repository');
  const ENCRYPTED = 'repository: { encryption: aes-256-gcm }\n';
  const opts = (o: Partial<ServiceProcessOptions>): ServiceProcessOptions => ({ sim, dataDir: svcDir(), ...o });

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-svc-encrypted-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true, seed: false });
  });
  afterAll(async () => {
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Starts the service, reads /health, stops it; its log. */
  async function startAndStop(o: Partial<ServiceProcessOptions>): Promise<string> {
    const svc = await startServiceProcess(opts(o));
    try {
      const health = await apiClient(svc.url).get('/api/v1/health');
      expect(health.status).toBe(200);
      expect(S.HealthStatus.parse(health.body)).toEqual({ status: 'ok' });
    } finally {
      expect(await svc.stop()).toBe(0);
    }
    return svc.logs();
  }

  test('made encrypted at the first start, opened with the passphrase at the next; a wrong or missing one stops the start', async () => {
    const first = await startAndStop({ config: ENCRYPTED, env: { OLVM_BACKUP_REPO_PASSPHRASE: PASSPHRASE } });
    expect(first).toMatch(/"format":2,"encryption":"aes-256-gcm".*"msg":"creating the repository"/);
    expect(first).toContain('"passphrase":"<set>"');
    expect(first).not.toContain(PASSPHRASE);

    // what it made: format 2, encrypted, one key; only the passphrase opens it
    expect(JSON.parse(await fs.readFile(path.join(repoDir(), 'config.json'), 'utf8'))).toMatchObject({ version: 2, encryption: { algorithm: 'aes-256-gcm' } });
    expect(await fs.readdir(path.join(repoDir(), 'keys'))).toHaveLength(1);
    await expect(Repository.open(repoDir())).rejects.toMatchObject({ code: 'REPO_KEY_REQUIRED' });
    await expect(Repository.open(repoDir(), { passphrase: WRONG })).rejects.toMatchObject({ code: 'REPO_KEY_WRONG' });
    const r = await Repository.open(repoDir(), { passphrase: PASSPHRASE });
    expect(r.encrypted).toBe(true);
    await r.close();

    // the next start opens it (from a file this time), whatever repository.encryption says now
    const file = path.join(dir, 'repo-passphrase');
    await fs.writeFile(file, `${PASSPHRASE}\n`, { mode: 0o600 });
    const second = await startAndStop({ config: `repository: { passphraseFile: ${file} }\n`, env: { OLVM_BACKUP_REPO_PASSPHRASE: undefined } });
    expect(second).not.toContain('creating the repository');
    expect(second).not.toContain(PASSPHRASE);

    // a wrong passphrase: no start, a message naming where it came from
    const wrong = await serviceStartFailure(opts({ config: ENCRYPTED, env: { OLVM_BACKUP_REPO_PASSPHRASE: WRONG } }));
    expect(wrong.code).toBe(1);
    expect(wrong.output).toContain(`olvm-backup: the passphrase from OLVM_BACKUP_REPO_PASSPHRASE does not open repository ${repoDir()} - the passphrase opens none of the 1 key(s) of repository`);
    expect(wrong.output).not.toContain(WRONG);
    expect(wrong.output).not.toContain('"listening"');
    await fs.writeFile(file, `${WRONG}\n`, { mode: 0o600 });
    const wrongFile = await serviceStartFailure(opts({ config: `repository: { passphraseFile: ${file} }\n`, env: { OLVM_BACKUP_REPO_PASSPHRASE: undefined } }));
    expect(wrongFile.code).toBe(1);
    expect(wrongFile.output).toContain(`olvm-backup: the passphrase from repository.passphraseFile (${file}) does not open repository ${repoDir()}`);
    expect(wrongFile.output).not.toContain(WRONG);

    // none: the service says where to give it
    const missing = await serviceStartFailure(opts({ env: { OLVM_BACKUP_REPO_PASSPHRASE: undefined } }));
    expect(missing.code).toBe(1);
    expect(missing.output).toContain(`olvm-backup: repository ${repoDir()} is encrypted and no passphrase is configured: set repository.passphraseFile or OLVM_BACKUP_REPO_PASSPHRASE`);
    // asking for encryption without one is a config error before anything is opened
    const unconfigured = await serviceStartFailure(opts({ config: ENCRYPTED, env: { OLVM_BACKUP_REPO_PASSPHRASE: undefined } }));
    expect(unconfigured.code).toBe(1);
    expect(unconfigured.output).toMatch(
      /^olvm-backup: config .*config\.yaml: repository\.passphraseFile: repository\.encryption is aes-256-gcm and the passphrase is missing: set repository\.passphraseFile or OLVM_BACKUP_REPO_PASSPHRASE\n$/,
    );
  });
});
