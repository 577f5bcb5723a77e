import { spawn, type ChildProcess } from 'child_process';
import { X509Certificate } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import YAML from 'yaml';
import { loadConfig } from '../../backend/src/config';
import { sha256Fingerprint } from '../../backend/src/hosts';
import { EngineSim, type SimVm } from '../engine-sim';
import { startHostServices, type HostServices } from '../helpers/hostLab';
import { apiClient, ssoToken } from '../helpers/serviceProcess';
import { backupDone } from '../helpers/serviceWaits';

const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as an admin runs it; `input` is fed to stdin (answers for --interactive). */
function cli(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env['OLVM_BACKUP_ENGINE_PASSWORD'];
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    p.stdin.end(input);
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function expectRefused(r: Run, pattern: RegExp): void {
  expect([r.code, r.stderr.trim().split('\n').length]).toEqual([1, 1]);
  expect(r.stderr).toMatch(/^olvm-backup: /);
  expect(r.stderr).toMatch(pattern);
}

/** `olvm-backup serve --config FILE` until its "listening" line. */
class Serve {
  private out = '';
  private readonly exited: Promise<number | null>;

  private constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (b: Buffer) => (this.out += b.toString('utf8')));
    proc.stderr?.on('data', (b: Buffer) => (this.out += b.toString('utf8')));
    this.exited = new Promise((resolve) => proc.once('exit', (c) => resolve(c)));
  }

  static async start(configFile: string): Promise<{ serve: Serve; url: string }> {
    const s = new Serve(spawn(process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const line = await s.waitFor((l) => l.msg === 'listening', 30_000);
    return { serve: s, url: line['url'] as string };
  }

  lines(): Array<Record<string, unknown>> {
    return this.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void this.exited.then(() => (gone = true));
    for (;;) {
      const hit = this.lines().find(pred);
      if (hit) return hit;
      if (gone || Date.now() > deadline) throw new Error(`no such log line${gone ? ' (the service exited)' : ''}; output:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<number | null> {
    this.proc.kill('SIGTERM');
    return this.exited;
  }
}

async function mode(p: string): Promise<{ mode: string; uid: number; gid: number }> {
  const st = await fs.stat(p);
  return { mode: (st.mode & 0o777).toString(8), uid: st.uid, gid: st.gid };
}

describe('olvm-backup setup against the engine simulator', () => {
  let dir: string;
  let sim: EngineSim;
  let lab: HostServices;
  let web: SimVm;
  let adminPw: string;
  let plainPw: string;
  let caFingerprint: string;

  beforeAll(async () => {
    lab = startHostServices();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-setup-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    web = sim.vmByName('web01');
    adminPw = path.join(dir, 'admin-pw');
    plainPw = path.join(dir, 'plain-pw');
    await fs.writeFile(adminPw, `${sim.users.admin.password}\n`, { mode: 0o600 });
    await fs.writeFile(plainPw, `${sim.users.plain.password}\n`, { mode: 0o600 });
    caFingerprint = new X509Certificate(await fs.readFile(sim.caFile as string)).fingerprint256;
  });

  afterAll(async () => {
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const localArgs = (etc: string, over: string[] = []): string[] => [
    'setup',
    '--config',
    path.join(dir, etc, 'config.yaml'),
    '--engine-url',
    sim.baseUrl,
    '--engine-user',
    'admin@internal',
    '--engine-password-file',
    adminPw,
    '--engine-ca-fingerprint',
    caFingerprint,
    '--data-dir',
    path.join(dir, `${etc}-data`),
    '--qmp-dir',
    sim.qmpDir,
    '--port',
    '0',
    ...over,
  ];

  test('refused: an unconfirmed or wrong engine CA, a wrong password, an account without an admin role; nothing is written', async () => {
    const etc = path.join(dir, 'refused');
    const base = localArgs('refused').filter((a, i, all) => a !== '--engine-ca-fingerprint' && all[i - 1] !== '--engine-ca-fingerprint');

    const unconfirmed = await cli(base);
    expectRefused(unconfirmed, /engine CA is not confirmed.*--engine-ca-fingerprint [0-9A-F:]{95}/);
    expect(unconfirmed.stdout).toContain(caFingerprint); // shown for the admin to compare

    expectRefused(await cli([...base, '--engine-ca-fingerprint', caFingerprint.replace(/^../, '00')]), /serves a CA with fingerprint .* not 00:/);
    const wrongPw = path.join(dir, 'wrong-pw');
    await fs.writeFile(wrongPw, 'not-the-password\n');
    expectRefused(await cli([...base, '--accept-engine-ca', '--engine-password-file', wrongPw]), /refused the login of admin@internal/);
    expectRefused(
      await cli([...base, '--accept-engine-ca', '--engine-user', sim.users.plain.name, '--engine-password-file', plainPw]),
      /user1@internal .* has no administrative role/,
    );
    // an admin view without the engine method's permits (ReadOnlyAdmin on System only)
    const roPw = path.join(dir, 'roadmin-pw');
    await fs.writeFile(roPw, `${sim.users.roadmin.password}\n`, { mode: 0o600 });
    expectRefused(
      await cli([...base, '--accept-engine-ca', '--engine-user', sim.users.roadmin.name, '--engine-password-file', roPw]),
      /roadmin@internal \(roadmin@internal-authz\) lacks what the engine backup method needs \(backup\.method auto\): create_disk on System \(grant DiskCreator \(or DiskOperator\) on System\); backup_disk on cluster \S+ \(grant DiskOperator on System or on cluster \S+ \(ClusterAdmin there grants it too\)\); edit_disk_properties on cluster \S+/,
    );
    expectRefused(await cli([...base, '--accept-engine-ca', '--backup-method', 'vddk']), /backup method must be one of auto, qmp, engine \(got vddk\)/);
    await expect(fs.access(etc)).rejects.toThrow();
  });

  test('the qmp method only: the engine method\'s permits are not asked for, and backup.method is written', async () => {
    const roPw = path.join(dir, 'roadmin-pw2');
    await fs.writeFile(roPw, `${sim.users.roadmin.password}\n`, { mode: 0o600 });
    const r = await cli(localArgs('roqmp', ['--engine-user', sim.users.roadmin.name, '--engine-password-file', roPw, '--backup-method', 'qmp']));
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/permissions: engine backup method not checked \(backup\.method qmp\)/);
    const config = await loadConfig({ file: path.join(dir, 'roqmp', 'config.yaml'), env: {} });
    expect(config.backup.method).toBe('qmp');
  });

  test('with flags: CA pinned, account checked, repository and config made; serve starts on that config, backs up web01 and reloads on SIGHUP', async () => {
    const r = await cli(localArgs('etc', ['--owner', 'nobody']));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`SHA256 fingerprint ${caFingerprint}`);
    expect(r.stdout).toMatch(/logged in as admin@internal-authz/);
    expect(r.stdout).toMatch(/permissions: administrative view ok \(1 host\)/);
    expect(r.stdout).toMatch(/permissions: engine backup method ok \(backup_disk, edit_disk_properties on System; create_disk on System\)/);
    expect(r.stdout).toMatch(/repository: created .*etc-data\/repository/);
    expect(r.stdout).toMatch(/next steps:[\s\S]*systemctl enable --now olvm-backup/);

    const etc = path.join(dir, 'etc');
    const file = path.join(etc, 'config.yaml');
    expect(await fs.readFile(path.join(etc, 'engine-ca.pem'), 'utf8')).toBe(`${(await fs.readFile(sim.caFile as string, 'utf8')).trim()}\n`);
    // secrets are the service account's alone; config files root's, readable by its group
    const nobody = await mode(path.join(etc, 'engine-password'));
    expect(nobody.mode).toBe('600');
    expect(nobody.uid).toBeGreaterThan(0);
    expect(await mode(file)).toEqual({ mode: '640', uid: 0, gid: nobody.gid });
    expect(await mode(path.join(etc, 'engine-ca.pem'))).toEqual({ mode: '640', uid: 0, gid: nobody.gid });
    expect((await mode(path.join(dir, 'etc-data', 'repository'))).uid).toBe(nobody.uid);

    // the shipped example's comments are kept; the values are setup's
    const text = await fs.readFile(file, 'utf8');
    expect(text).toContain('# The service account the service logs in with (password grant).');
    const config = await loadConfig({ file, env: {} });
    expect(config).toMatchObject({
      engine: { url: sim.baseUrl, user: 'admin@internal', caFile: path.join(etc, 'engine-ca.pem'), passwordFile: path.join(etc, 'engine-password') },
      repository: { path: path.join(dir, 'etc-data', 'repository') },
      hosts: { kind: 'local', qmpDir: sim.qmpDir },
      cors: { origins: [new URL(sim.baseUrl).origin] },
      listen: { host: '127.0.0.1', port: 0 },
    });

    const { serve, url } = await Serve.start(file);
    try {
      const token = await ssoToken(sim, 'admin');
      // the version is for callers with a token (anyone else learns up or down)
      expect((await apiClient(url).get('/api/v1/health')).body).toEqual({ status: 'ok' });
      const health = (await apiClient(url, token).get('/api/v1/health')).body as { status: string; version: string };
      expect(health.status).toBe('ok');
      expect(health.version).toMatch(/^\d+\.\d+\.\d+\+g[0-9a-f]{7,}(\.dirty)?$/);
      const job = await backupDone(apiClient(url, token), web.id);
      expect([job.state, job.result?.disks.map((d) => d.mode)]).toEqual(['succeeded', ['full', 'full']]);

      // SIGHUP: the log level applies at once, the limits need a restart, the log says which
      const doc = YAML.parseDocument(text);
      doc.setIn(['log', 'level'], 'debug');
      doc.setIn(['limits', 'global'], 3);
      await fs.writeFile(file, doc.toString());
      serve.proc.kill('SIGHUP');
      const reloaded = await serve.waitFor((l) => l['signal'] === 'SIGHUP' && Array.isArray(l['applied']));
      expect(reloaded).toMatchObject({ applied: ['log.level'], needRestart: ['limits.global'], msg: 'configuration re-read; needs a restart to apply: limits.global' });
      // debug lines now appear (and never show the password)
      expect(await serve.waitFor((l) => l['level'] === 20)).toMatchObject({ msg: 'the configuration file as re-read', config: { log: { level: 'debug' }, engine: { password: '<set>' } } });

      // an invalid file is refused and changes nothing
      await fs.writeFile(file, `${doc.toString()}\nbogus: 1\n`);
      serve.proc.kill('SIGHUP');
      expect(await serve.waitFor((l) => typeof l['msg'] === 'string' && (l['msg']).startsWith('reload refused'))).toMatchObject({ level: 50, err: expect.stringContaining('unknown key "bogus"') });
      expect((await apiClient(url).get('/api/v1/health')).status).toBe(200);
    } finally {
      await fs.writeFile(file, text);
      expect(await serve.stop()).toBe(0);
    }
  });

  test('running setup again with the same answers changes nothing', async () => {
    const file = path.join(dir, 'etc', 'config.yaml');
    const before = await fs.readFile(file, 'utf8');
    const r = await cli(localArgs('etc', ['--owner', 'nobody']));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('engine CA: pinned already');
    expect(r.stdout).toMatch(/repository: kept /);
    expect(r.stdout).toContain(`kept: ${file}`);
    expect(r.stdout).not.toMatch(/^(created|updated): /m);
    expect(await fs.readFile(file, 'utf8')).toBe(before);
  });

  test('interactive, hosts over SSH: each host listed with its key fingerprint, pinned on confirmation; serve backs up through the pinned host; a changed key is refused', async () => {
    const etc = path.join(dir, 'etc2');
    const file = path.join(etc, 'config.yaml');
    const presented = sha256Fingerprint(Buffer.from(lab.hostKeyPub.split(/\s+/)[1] as string, 'base64'));
    const answers = [sim.baseUrl, 'admin@internal', sim.users.admin.password, 'y', 'qmp-socket', '', 'y', path.join(dir, 'etc2-data'), ''].join('\n');
    const r = await cli(
      ['setup', '--interactive', '--config', file, '--ssh-port', String(lab.sshPort), '--ssh-key', lab.clientKeyFile, '--host-qmp-dir', sim.qmpDir, '--host-scratch-dir', path.join(dir, 'remote-scratch'), '--port', '0'],
      `${answers}\n`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('is this the engine CA? [y/N]: y');
    expect(r.stdout).toMatch(/SSH user on the KVM hosts .*\[root\]: \n/);
    expect(r.stdout).not.toContain(sim.users.admin.password); // the password is not echoed
    expect(r.stdout).toMatch(new RegExp(`sim-host +127\\.0\\.0\\.1:${lab.sshPort} +ssh-ed25519 ${presented.replace(/[+/]/g, '\\$&')} +pinned after confirmation, login ok`));

    const hosts = JSON.parse(await fs.readFile(path.join(etc, 'hosts.json'), 'utf8')) as { hosts: Array<Record<string, unknown>> };
    expect(hosts.hosts).toEqual([
      {
        match: '127.0.0.1',
        kind: 'qmp-socket',
        ssh: { port: lab.sshPort, user: 'root', privateKeyFile: lab.clientKeyFile, hostKey: presented },
        scratchDir: path.join(dir, 'remote-scratch'),
        qmpDir: sim.qmpDir,
      },
    ]);
    expect(await loadConfig({ file, env: {} })).toMatchObject({ hosts: { kind: 'directory', directory: path.join(etc, 'hosts.json') } });

    const { serve, url } = await Serve.start(file);
    try {
      const job = await backupDone(apiClient(url, await ssoToken(sim, 'admin')), web.id);
      expect(job.state).toBe('succeeded');
    } finally {
      expect(await serve.stop()).toBe(0);
    }

    // the host now presents another key than the pinned one: refused, nothing changed
    const hostsText = await fs.readFile(path.join(etc, 'hosts.json'), 'utf8');
    const other = sha256Fingerprint(Buffer.from(lab.otherKeyPub.split(/\s+/)[1] as string, 'base64'));
    await fs.writeFile(path.join(etc, 'hosts.json'), hostsText.replace(presented, other));
    const pinnedOther = await fs.readFile(path.join(etc, 'hosts.json'), 'utf8');
    expectRefused(await cli(['setup', '--config', file, '--accept-host-keys']), new RegExp(`presents ${presented.replace(/[+/]/g, '\\$&')}, not its pinned key .*--host-key 127\\.0\\.0\\.1=`));
    expect(await fs.readFile(path.join(etc, 'hosts.json'), 'utf8')).toBe(pinnedOther);
    // given explicitly after checking it on the host, the new key is pinned
    const fixed = await cli(['setup', '--config', file, '--host-key', `127.0.0.1=${presented}`]);
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toMatch(/key changed; new key pinned as given, login ok/);
    expect(await fs.readFile(path.join(etc, 'hosts.json'), 'utf8')).toBe(hostsText);
  });

  test('a restricted account on libvirt hosts: setup checks its login and its sudo rule, and writes the files the host must grant it', async () => {
    const presented = sha256Fingerprint(Buffer.from(lab.hostKeyPub.split(/\s+/)[1] as string, 'base64'));
    const accessDir = path.join(dir, 'host-access');
    const args = (etc: string, over: string[] = []): string[] => [
      ...localArgs(etc).filter((a, i, all) => a !== '--qmp-dir' && all[i - 1] !== '--qmp-dir'),
      '--hosts-kind', 'libvirt', '--ssh-user', lab.account, '--ssh-port', String(lab.sshPort), '--ssh-key', lab.clientKeyFile,
      '--host-key', `127.0.0.1=${presented}`, '--qemu-owner', 'libvirt-qemu:libvirt-qemu', '--host-scratch-dir', '/var/tmp/olvm-setup-scratch',
      ...over,
    ];
    const r = await cli(args('etc3', ['--host-access-dir', accessDir]));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sim-host +127\.0\.0\.1:\d+ .*pinned as given, login ok, sudo rule ok/);
    const hosts = JSON.parse(await fs.readFile(path.join(dir, 'etc3', 'hosts.json'), 'utf8')) as { hosts: Array<Record<string, unknown>> };
    expect(hosts.hosts).toEqual([
      {
        match: '127.0.0.1',
        kind: 'libvirt',
        ssh: { port: lab.sshPort, user: lab.account, privateKeyFile: lab.clientKeyFile, hostKey: presented },
        scratchDir: '/var/tmp/olvm-setup-scratch',
        qemuOwner: 'libvirt-qemu:libvirt-qemu',
        sudo: true,
      },
    ]);
    // the files for the host are what the lab installed, rendered by the same code (the key's
    // comment aside: setup names the key after this machine); nothing is left to do there
    const mine = path.join(accessDir, '127.0.0.1');
    const read = (f: string): Promise<string> => fs.readFile(f, 'utf8');
    expect(await read(path.join(mine, 'sudoers'))).toBe(await read(lab.sudoersFile));
    expect(await read(path.join(mine, 'sshd_config.match'))).toBe(await read(path.join(lab.accessDir, 'sshd_config.match')));
    const withoutComment = (line: string): string => line.trim().split(' ').slice(0, -1).join(' ');
    expect(withoutComment(await read(path.join(mine, 'authorized_keys')))).toBe(withoutComment(await read(path.join(lab.accessDir, 'authorized_keys'))));
    expect(await read(path.join(mine, 'create-account.sh'))).toContain('install -d -m 0711 -o olvmbackup -g olvmbackup /var/tmp/olvm-setup-scratch');
    expect(r.stdout).not.toContain('give the service');

    // another libvirt URI than the installed rule names: sudo refuses, setup says so and prints the steps
    const other = await cli(args('etc4', ['--libvirt-uri', 'qemu:///system?mode=legacy']));
    expect(other.code).toBe(0);
    expect(other.stdout).toMatch(/login ok, sudo rule missing: not allowed: .*qemu-monitor-command/);
    expect(other.stdout).toMatch(/on sim-host: give the service's restricted account what it needs/);
    expect(other.stdout).toContain(`from="127.0.0.1",restrict,port-forwarding`);
    expect(other.stdout).toContain('/usr/bin/virsh ^-q -c qemu:///system\\?mode=legacy qemu-monitor-command');
    expect(other.stdout).toContain(`Match User ${lab.account}`);
  });
});
