import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'fs/promises';
import { tmpdir } from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import YAML from 'yaml';
import { describeConfig, loadConfig, type LoadConfigOptions, type ServiceConfig } from '../../backend/src/config';
import { configFileSchema } from '../../backend/src/config/schema';
import { CONFIG_BACKUP_METHODS } from '../../backend/src/config';
import { BACKUP_METHODS } from '../../backend/src/backup/model';
import { isAppError } from '../../backend/src/errors';
import { childFor, createLogger } from '../../backend/src/util/log';

const SECRET = 'hunter2-Very-Secret';
/** The repository's passphrase in these tests: like SECRET, it must never appear in a message. */
const PASSPHRASE = 'correct horse battery staple';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'olvm-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A config file in the temp dir (plus a mode-600 password file beside it). */
async function configFile(yaml: string, name = 'config.yaml'): Promise<string> {
  await writeFile(path.join(dir, 'engine-password'), `${SECRET}\n`, { mode: 0o600 });
  const file = path.join(dir, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, yaml);
  return file;
}

const MINIMAL = `
engine:
  url: https://engine.example.com/ovirt-engine
  user: olvm-backup@internal
  passwordFile: engine-password
hosts:
  qmpDir: qmp
`;

/** The CONFIG_INVALID message `loadConfig` fails with (the test fails if it succeeds). */
async function failure(opts: LoadConfigOptions): Promise<string> {
  try {
    await loadConfig({ env: {}, ...opts });
  } catch (err) {
    if (!isAppError(err, 'CONFIG_INVALID')) throw err;
    for (const secret of [SECRET, PASSPHRASE]) {
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err.details ?? {})).not.toContain(secret);
    }
    return err.message;
  }
  throw new Error('loadConfig succeeded');
}

describe('loadConfig', () => {
  test('no file: environment and defaults, everything under the data dir', async () => {
    const c = await loadConfig({
      env: {
        OLVM_BACKUP_DATA_DIR: dir,
        OLVM_BACKUP_ENGINE_URL: 'https://engine.example.com/ovirt-engine/',
        OLVM_BACKUP_ENGINE_USER: 'admin@internal',
        OLVM_BACKUP_ENGINE_PASSWORD: SECRET,
        OLVM_BACKUP_QMP_DIR: '/run/qmp',
      },
    });
    expect(c).toEqual<ServiceConfig>({
      file: undefined,
      dataDir: dir,
      engine: {
        url: 'https://engine.example.com/ovirt-engine',
        user: 'admin@internal',
        password: SECRET,
        passwordFile: undefined,
        caFile: undefined,
        timeoutSeconds: 60,
      },
      repository: { path: path.join(dir, 'repository'), gcSchedule: '0 4 * * 0', gcTimeZone: 'UTC', format: 2, encryption: 'none', passphrase: undefined, passphraseFile: undefined, s3: null },
      sync: { s3: null, cacheDir: path.join(dir, 'sync-cache') },
      catalog: { path: path.join(dir, 'catalog.sqlite') },
      scratch: { path: path.join(dir, 'scratch') },
      listen: { host: '127.0.0.1', port: 8780, heartbeatSeconds: 30, tls: undefined },
      cors: { origins: ['https://engine.example.com'] },
      limits: { global: 4, perHost: 2 },
      hosts: { kind: 'local', qmpDir: '/run/qmp' },
      auth: { cacheSeconds: 60, permitCacheSeconds: 30, backupAdmins: [], scrapeToken: undefined },
      backup: { method: 'auto' },
      protection: { minLockDays: 7, requireObjectLock: true, objectLockMode: 'compliance' },
      bootCheck: { timeoutSeconds: 300, expect: null },
      fileRestore: { idleSeconds: 600, maxSessions: 2 },
      log: { level: 'info' },
      warnings: [],
    });
  });

  test('a full file, every key set', async () => {
    for (const f of ['ca.pem', 'cert.pem', 'key.pem', 'hosts.json']) await writeFile(path.join(dir, f), 'x');
    await writeFile(path.join(dir, 'scrape-token'), 'scrape me\n', { mode: 0o600 });
    await writeFile(path.join(dir, 'repo-passphrase'), `${PASSPHRASE}\n`, { mode: 0o600 });
    const file = await configFile(`
dataDir: ${dir}/data
engine:
  url: https://engine.example.com:8443/ovirt-engine
  user: olvm-backup@internal
  passwordFile: ${dir}/engine-password
  caFile: ${dir}/ca.pem
  timeoutSeconds: 30
repository: { path: /srv/backup/repository, gcSchedule: "30 2 * * *", gcTimeZone: Europe/Berlin, format: 2, encryption: aes-256-gcm, passphraseFile: repo-passphrase }
catalog: { path: /srv/backup/catalog.sqlite }
scratch: { path: /var/tmp/olvm-scratch }
listen: { host: 0.0.0.0, port: 8443, tlsCert: ${dir}/cert.pem, tlsKey: ${dir}/key.pem }
cors: { origins: [https://engine.example.com:8443, "http://Other.example.com:8080/"] }
limits: { global: 8, perHost: 3 }
hosts:
  directory: ${dir}/hosts.json
auth: { cacheSeconds: 120, permitCacheSeconds: 10, backupAdmins: [olvm-backup-admins, ops@internal], scrapeTokenFile: ${dir}/scrape-token }
backup: { method: engine }
protection: { minLockDays: 0 }
bootCheck: { timeoutSeconds: 600, expect: "^myhost login:" }
fileRestore: { idleSeconds: 120, maxSessions: 3 }
log: { level: debug }
`);
    const c = await loadConfig({ file, env: {} });
    expect(c).toEqual<ServiceConfig>({
      file,
      dataDir: `${dir}/data`,
      engine: {
        url: 'https://engine.example.com:8443/ovirt-engine',
        user: 'olvm-backup@internal',
        password: SECRET,
        passwordFile: `${dir}/engine-password`,
        caFile: `${dir}/ca.pem`,
        timeoutSeconds: 30,
      },
      repository: {
        path: '/srv/backup/repository',
        gcSchedule: '30 2 * * *',
        gcTimeZone: 'Europe/Berlin',
        format: 2,
        encryption: 'aes-256-gcm',
        passphrase: PASSPHRASE,
        passphraseFile: path.join(dir, 'repo-passphrase'),
        s3: null,
      },
      sync: { s3: null, cacheDir: path.join(dir, 'data', 'sync-cache') },
      catalog: { path: '/srv/backup/catalog.sqlite' },
      scratch: { path: '/var/tmp/olvm-scratch' },
      listen: { host: '0.0.0.0', port: 8443, heartbeatSeconds: 30, tls: { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` } },
      cors: { origins: ['https://engine.example.com:8443', 'http://other.example.com:8080'] },
      limits: { global: 8, perHost: 3 },
      hosts: { kind: 'directory', directory: `${dir}/hosts.json` },
      auth: { cacheSeconds: 120, permitCacheSeconds: 10, backupAdmins: ['olvm-backup-admins', 'ops@internal'], scrapeToken: 'scrape me' },
      backup: { method: 'engine' },
      protection: { minLockDays: 0, requireObjectLock: true, objectLockMode: 'compliance' },
      bootCheck: { timeoutSeconds: 600, expect: '^myhost login:' },
      fileRestore: { idleSeconds: 120, maxSessions: 3 },
      log: { level: 'debug' },
      warnings: [],
    });
  });

  test("relative paths are resolved from the file's directory; a password file others can read is a warning", async () => {
    const file = await configFile(`${MINIMAL}dataDir: data\nrepository: { path: ../repo }\n`, 'etc/config.yaml');
    await writeFile(path.join(dir, 'etc', 'engine-password'), 'pw\r\n', { mode: 0o644 });
    await chmod(path.join(dir, 'etc', 'engine-password'), 0o644);
    const c = await loadConfig({ file, env: {} });
    expect(c.dataDir).toBe(path.join(dir, 'etc', 'data'));
    expect(c.repository.path).toBe(path.join(dir, 'repo'));
    expect(c.catalog.path).toBe(path.join(dir, 'etc', 'data', 'catalog.sqlite'));
    expect(c.hosts).toEqual({ kind: 'local', qmpDir: path.join(dir, 'etc', 'qmp') });
    expect(c.engine.passwordFile).toBe(path.join(dir, 'etc', 'engine-password'));
    expect(c.engine.password).toBe('pw');
    expect(c.warnings).toEqual([expect.stringMatching(/engine\.passwordFile: .*engine-password is readable by group or others \(mode 644\)/)]);
  });

  test('precedence: file < environment < overrides', async () => {
    const file = await configFile(`${MINIMAL}listen: { port: 9000, host: 10.0.0.1 }\nlimits: { global: 6 }\n`);
    const env = { OLVM_BACKUP_LISTEN_PORT: '9100', OLVM_BACKUP_CORS_ORIGINS: 'https://a.example.com, https://b.example.com:444' };

    const fromFile = await loadConfig({ file, env: {} });
    expect(fromFile.listen).toEqual({ host: '10.0.0.1', port: 9000, heartbeatSeconds: 30, tls: undefined });
    expect(fromFile.limits).toEqual({ global: 6, perHost: 2 });

    const fromEnv = await loadConfig({ file, env });
    expect(fromEnv.listen).toEqual({ host: '10.0.0.1', port: 9100, heartbeatSeconds: 30, tls: undefined });
    expect(fromEnv.cors.origins).toEqual(['https://a.example.com', 'https://b.example.com:444']);

    const fromFlags = await loadConfig({ file, env, overrides: { listen: { port: 9200 }, limits: { global: 1 } } });
    expect(fromFlags.listen).toEqual({ host: '10.0.0.1', port: 9200, heartbeatSeconds: 30, tls: undefined });
    expect(fromFlags.limits).toEqual({ global: 1, perHost: 1 });
  });

  test('a higher layer replaces the lower choice of host link and password source', async () => {
    const file = await configFile(MINIMAL.replace('qmpDir: qmp', 'directory: hosts.json'));
    await writeFile(path.join(dir, 'hosts.json'), '{"hosts":[]}');
    expect((await loadConfig({ file, env: {} })).hosts).toEqual({ kind: 'directory', directory: path.join(dir, 'hosts.json') });

    const env = { OLVM_BACKUP_QMP_DIR: '/run/qmp', OLVM_BACKUP_ENGINE_PASSWORD: 'from-env' };
    const c = await loadConfig({ file, env });
    expect(c.hosts).toEqual({ kind: 'local', qmpDir: '/run/qmp' });
    expect(c.engine).toMatchObject({ password: 'from-env', passwordFile: undefined });

    await writeFile(path.join(dir, 'other-password'), 'from-flag\n', { mode: 0o600 });
    const flags = await loadConfig({ file, env, overrides: { engine: { passwordFile: path.join(dir, 'other-password') } } });
    expect(flags.engine).toMatchObject({ password: 'from-flag', passwordFile: path.join(dir, 'other-password') });
  });

  describe('bad input is CONFIG_INVALID naming the key', () => {
    const cases: [string, string, RegExp][] = [
      ['an unknown key', `${MINIMAL}listen: { prot: 8443 }\n`, /: unknown key "listen\.prot"$/],
      ['an unknown section', `${MINIMAL}lisen: {}\n`, /: unknown key "lisen"$/],
      ['a wrong type', `${MINIMAL}limits: { perHost: two }\n`, /: limits\.perHost: must be a positive integer \(got "two"\)$/],
      ['a negative number', `${MINIMAL}auth: { cacheSeconds: -5 }\n`, /: auth\.cacheSeconds: must be a positive integer \(got -5\)$/],
      ['a section that is not a mapping', `${MINIMAL}listen: 8443\n`, /: listen: must be a mapping of keys \(got 8443\)$/],
      [
        'an origin with a path',
        `${MINIMAL}cors: { origins: [https://a.example.com, https://engine.example.com/ovirt-engine] }\n`,
        /: cors\.origins\[1\]: must be an origin like https:\/\/engine\.example\.com \(no path\) \(got "https:\/\/engine\.example\.com\/ovirt-engine"\)$/,
      ],
      ['a wildcard origin', `${MINIMAL}cors: { origins: ["*"] }\n`, /: cors\.origins\[0\]: wildcards are not allowed/],
      ['perHost above global', `${MINIMAL}limits: { global: 2, perHost: 3 }\n`, /: limits\.perHost: must not exceed limits\.global \(2\) \(got 3\)$/],
      ['a certificate without its key', `${MINIMAL}listen: { tlsCert: cert.pem }\n`, /: listen\.tlsKey: is required when listen\.tlsCert is set/],
      ['both host links', `${MINIMAL}  directory: hosts.json\n`, /: hosts: takes exactly one of hosts\.qmpDir .* and hosts\.directory/],
      ['no host link', MINIMAL.replace('hosts:\n  qmpDir: qmp\n', ''), /: hosts: needs exactly one of hosts\.qmpDir/],
      ['a log level pino lacks', `${MINIMAL}log: { level: verbose }\n`, /: log\.level: must be one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)$/],
      ['a URL that is not http(s)', MINIMAL.replace('https://engine', 'ftp://engine'), /: engine\.url: must be an http\(s\) URL/],
      ['an empty value', `${MINIMAL}scratch: { path: }\n`, /: scratch\.path: must be a path \(a string\) \(got an empty value\)$/],
      ['a missing required key', MINIMAL.replace(/ {2}user: .*\n/, ''), /: engine\.user: is required \(or set OLVM_BACKUP_ENGINE_USER\)$/],
      ['a TLS file that cannot be read', `${MINIMAL}listen: { tlsCert: nope.pem, tlsKey: nope.key }\n`, /: listen\.tlsCert: cannot read .*nope\.pem \(ENOENT\); listen\.tlsKey: cannot read/],
      ['a YAML syntax error', `${MINIMAL}log: level: info\n`, /config .*config\.yaml: invalid YAML: nested mappings are not allowed .* at line 8, column 6$/i],
      ['a top level that is a list', '- a\n- b\n', /config .*config\.yaml: must be a mapping of keys \(got a list\)$/],
      ['a permit cache longer than a minute', `${MINIMAL}auth: { permitCacheSeconds: 300 }\n`, /: auth\.permitCacheSeconds: .* \(got 300\)$/],
      ['a negative minimum lock', `${MINIMAL}protection: { minLockDays: -1 }\n`, /: protection\.minLockDays: .* \(got -1\)$/],
      ['a boot check expectation that is no regular expression', `${MINIMAL}bootCheck: { expect: "a(b" }\n`, /: bootCheck\.expect: must be a valid regular expression/],
      ['a boot check timeout of a second', `${MINIMAL}bootCheck: { timeoutSeconds: 1 }\n`, /: bootCheck\.timeoutSeconds: .* \(got 1\)$/],
      ['no file-browsing session at all', `${MINIMAL}fileRestore: { maxSessions: 0 }\n`, /: fileRestore\.maxSessions: .* \(got 0\)$/],
      ['backup admins that are not a list', `${MINIMAL}auth: { backupAdmins: ops }\n`, /: auth\.backupAdmins: must be a list of names \(got "ops"\)$/],
      ['a scrape token file that cannot be read', `${MINIMAL}auth: { scrapeTokenFile: nope-token }\n`, /: auth\.scrapeTokenFile: cannot read .*nope-token \(ENOENT\)$/],
      [
        'encryption without a passphrase',
        `${MINIMAL}repository: { encryption: aes-256-gcm }\n`,
        /: repository\.passphraseFile: repository\.encryption is aes-256-gcm and the passphrase is missing: set repository\.passphraseFile or OLVM_BACKUP_REPO_PASSPHRASE$/,
      ],
      ['encryption in format 1', `${MINIMAL}repository: { format: 1, encryption: aes-256-gcm, passphraseFile: engine-password }\n`, /: repository\.format: an encrypted repository \(repository\.encryption aes-256-gcm\) needs format 2$/],
      ['an unknown backup method', `${MINIMAL}backup: { method: vddk }\n`, /: backup\.method: must be one of auto, qmp, engine \(got "vddk"\)$/],
      ['an unknown repository format', `${MINIMAL}repository: { format: 3 }\n`, /: repository\.format: must be 1 or 2 \(got 3\)$/],
      ['an unknown encryption', `${MINIMAL}repository: { encryption: aes }\n`, /: repository\.encryption: must be one of none, aes-256-gcm \(got "aes"\)$/],
      ['a passphrase file that cannot be read', `${MINIMAL}repository: { passphraseFile: nope }\n`, /: repository\.passphraseFile: cannot read .*nope \(ENOENT\)$/],
    ];
    test.each(cases)('%s', async (_what, yaml, expected) => {
      const file = await configFile(yaml);
      const message = await failure({ file });
      expect(message.startsWith(`config ${file}: `)).toBe(true);
      expect(message).toMatch(expected);
    });

    test('several problems are reported together', async () => {
      const file = await configFile(`${MINIMAL}limits: { global: 0, perHost: x }\nlisten: { prot: 1 }\n`);
      const message = await failure({ file });
      expect(message).toContain('limits.global: must be a positive integer (got 0)');
      expect(message).toContain('limits.perHost: must be a positive integer (got "x")');
      expect(message).toContain('unknown key "listen.prot"');
    });

    test('a missing file', async () => {
      expect(await failure({ file: path.join(dir, 'absent.yaml') })).toBe(`config ${path.join(dir, 'absent.yaml')}: no such file`);
    });

    test('a missing password', async () => {
      const file = await configFile(MINIMAL.replace(/ {2}passwordFile: .*\n/, ''));
      expect(await failure({ file })).toMatch(/: engine\.passwordFile: the engine password is missing: set engine\.passwordFile or OLVM_BACKUP_ENGINE_PASSWORD$/);
      await writeFile(path.join(dir, 'empty'), '\n');
      expect(await failure({ file, overrides: { engine: { passwordFile: path.join(dir, 'empty') } } })).toMatch(/: engine\.passwordFile: .*empty is empty$/);
      expect(await failure({ file: await configFile(MINIMAL.replace('passwordFile: engine-password', 'passwordFile: gone')) })).toMatch(
        /: engine\.passwordFile: cannot read .*gone \(ENOENT\)/,
      );
    });

    test('a bad value from the environment names the variable', async () => {
      const file = await configFile(MINIMAL);
      const message = await failure({ file, env: { OLVM_BACKUP_LISTEN_PORT: 'http', OLVM_BACKUP_CORS_ORIGINS: 'https://ok.example.com,https://x.example.com/path' } });
      expect(message).toContain('listen.port: must be a port number (0-65535) (got "http" from OLVM_BACKUP_LISTEN_PORT)');
      expect(message).toContain('cors.origins[1]: must be an origin like https://engine.example.com (no path) (got "https://x.example.com/path" from OLVM_BACKUP_CORS_ORIGINS)');
    });
  });

  test('the password is never shown: not in errors, not in URLs, not in describeConfig', async () => {
    const file = await configFile(MINIMAL.replace('https://engine.example.com', `https://admin:${SECRET}@engine.example.com`));
    expect(await failure({ file })).toMatch(/: engine\.url: must not contain a user or password/);
    // a password file with the wrong keys in the YAML around it, and a secret from the environment
    await failure({ file: await configFile(`${MINIMAL}limits: { perHost: 99 }\n`), env: { OLVM_BACKUP_ENGINE_PASSWORD: SECRET } });
    await failure({ file: await configFile(`${MINIMAL}engine2: {}\n`), env: { OLVM_BACKUP_ENGINE_PASSWORD: SECRET, OLVM_BACKUP_ENGINE_PASSWORD_FILE: 'x' } });

    const c = await loadConfig({ file: await configFile(MINIMAL), env: {} });
    expect(c.engine.password).toBe(SECRET);
    const described = describeConfig(c);
    expect(JSON.stringify(described)).not.toContain(SECRET);
    expect(described).toMatchObject({ engine: { password: '<set>', user: 'olvm-backup@internal' }, listen: { port: 8780 } });
    expect(describeConfig({ ...c, engine: { ...c.engine, password: '' } })).toMatchObject({ engine: { password: '<missing>' } });
  });
});

describe("the repository's passphrase", () => {
  const repoPassphrase = (mode = 0o600): Promise<void> => writeFile(path.join(dir, 'repo-passphrase'), `${PASSPHRASE}\n`, { mode });

  test('from its file or OLVM_BACKUP_REPO_PASSPHRASE, like the engine password; needed only to encrypt', async () => {
    await repoPassphrase();
    const file = await configFile(`${MINIMAL}repository: { passphraseFile: repo-passphrase }\n`, 'with-passphrase.yaml');
    expect((await loadConfig({ file, env: {} })).repository).toMatchObject({ passphrase: PASSPHRASE, passphraseFile: path.join(dir, 'repo-passphrase'), format: 2, encryption: 'none' });
    // the environment wins over the file's key, a file given on the command line over both
    const env = { OLVM_BACKUP_REPO_PASSPHRASE: 'from the environment' };
    expect((await loadConfig({ file, env })).repository).toMatchObject({ passphrase: 'from the environment', passphraseFile: undefined });
    await writeFile(path.join(dir, 'other'), 'from a flag\n', { mode: 0o600 });
    const flag = await loadConfig({ file, env, overrides: { repository: { passphraseFile: path.join(dir, 'other') } } });
    expect(flag.repository).toMatchObject({ passphrase: 'from a flag', passphraseFile: path.join(dir, 'other') });
    // none at all: fine while the service makes (or finds) a plain repository
    expect((await loadConfig({ file: await configFile(MINIMAL), env: {} })).repository).toMatchObject({ passphrase: undefined, passphraseFile: undefined });
    const encrypted = await configFile(`${MINIMAL}repository: { format: 2, encryption: aes-256-gcm }\n`, 'encrypted.yaml');
    expect((await loadConfig({ file: encrypted, env })).repository).toMatchObject({ format: 2, encryption: 'aes-256-gcm', passphrase: 'from the environment' });
    // an empty file is no passphrase; one others may read is a warning
    await writeFile(path.join(dir, 'empty'), '\n', { mode: 0o600 });
    expect(await failure({ file: encrypted, overrides: { repository: { passphraseFile: path.join(dir, 'empty') } } })).toMatch(/: repository\.passphraseFile: .*empty is empty$/);
    await chmod(path.join(dir, 'repo-passphrase'), 0o640);
    expect((await loadConfig({ file, env: {} })).warnings).toEqual([expect.stringMatching(/^repository\.passphraseFile: .*repo-passphrase is readable by group or others \(mode 640\)/)]);
  });

  test('is never shown: not in errors, not in describeConfig, not in a log line', async () => {
    await repoPassphrase();
    // problems elsewhere in a config whose passphrase was read, or comes from the environment
    await failure({ file: await configFile(`${MINIMAL}repository: { passphraseFile: repo-passphrase, format: 7 }\n`) });
    await failure({ file: await configFile(`${MINIMAL}limits: { perHost: 99 }\n`), env: { OLVM_BACKUP_REPO_PASSPHRASE: PASSPHRASE } });

    const c = await loadConfig({ file: await configFile(`${MINIMAL}repository: { encryption: aes-256-gcm, passphraseFile: repo-passphrase }\n`), env: {} });
    expect(c.repository.passphrase).toBe(PASSPHRASE);
    const described = describeConfig(c);
    expect(JSON.stringify(described)).not.toContain(PASSPHRASE);
    expect(described).toMatchObject({ repository: { passphrase: '<set>', passphraseFile: path.join(dir, 'repo-passphrase'), encryption: 'aes-256-gcm', format: 2 } });
    expect(describeConfig({ ...c, repository: { ...c.repository, passphrase: undefined } })).toMatchObject({ repository: { passphrase: '<none>' } });

    // the resolved section logged by mistake
    const stream = new PassThrough();
    let out = '';
    stream.on('data', (b: Buffer) => (out += b.toString('utf8')));
    createLogger({ level: 'info', destination: stream }).info({ repository: c.repository, passphrase: PASSPHRASE }, 'oops');
    expect(out).toContain('"passphrase":"[redacted]"');
    expect(out).not.toContain(PASSPHRASE);
  });
});

test("backup.method's values are the backup method's own (config/ keeps a copy: it may import nothing above it)", () => {
  expect([...CONFIG_BACKUP_METHODS]).toEqual([...BACKUP_METHODS]);
});

test('the example shipped in packaging/ is a valid config file', async () => {
  // tests run from dist/test/unit
  const example = await readFile(path.join(__dirname, '../../../packaging/config.example.yaml'), 'utf8');
  const parsed = configFileSchema.safeParse(YAML.parse(example));
  expect(parsed.error?.issues ?? []).toEqual([]);
});

describe('createLogger', () => {
  test('JSON lines with job and VM ids; tokens and passwords redacted wherever they are', () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.on('data', (b: Buffer) => lines.push(...b.toString('utf8').split('\n').filter((l) => l !== '')));
    const logger = createLogger({ level: 'info', destination: stream, name: 'olvm-backup' });
    const job = childFor(logger, { jobId: 'j1', vmId: 'vm-7' });
    job.info({ authorization: 'Bearer tok-1', req: { headers: { authorization: 'Bearer tok-2' } }, engine: { password: 'pw-3' }, token: 'tok-4' }, 'backup started');
    job.debug('not at info level');

    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] as string);
    expect(line).toMatchObject({ level: 30, name: 'olvm-backup', jobId: 'j1', vmId: 'vm-7', msg: 'backup started', authorization: '[redacted]', token: '[redacted]' });
    expect(line.req.headers.authorization).toBe('[redacted]');
    expect(line.engine.password).toBe('[redacted]');
    expect(lines[0]).not.toMatch(/tok-|pw-3/);
  });
});
