import { execFile, execFileSync, spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { WebSocket } from 'ws';
import YAML from 'yaml';
import { EngineSim } from '../engine-sim';
import { ssoToken } from '../helpers/serviceProcess';

/**
 * `npm run package` (packaging/build.sh) as a release build makes it: the tarball and the two
 * RPMs, checked with the real rpm tools — file lists with modes and owners, scriptlets run in a
 * throwaway root (packaging/test-install.sh), the systemd unit through systemd-analyze, and
 * the installed payload actually serving. Missing tools fail loudly, naming the apt package.
 */

const ROOT = path.resolve(__dirname, '../../..');
const TOOLS: Array<[tool: string, apt: string]> = [
  ['rpmbuild', 'rpm'],
  ['rpm2archive', 'rpm'],
  ['systemd-analyze', 'systemd'],
  ['unshare', 'util-linux'],
  ['git', 'git'],
  ['apache2', 'apache2'],
];

function requirePackagingTools(): void {
  const missing = TOOLS.filter(([t]) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(`packaging tests need ${missing.map(([t]) => t).join(', ')}: apt-get install -y ${[...new Set(missing.map(([, p]) => p))].join(' ')}`);
  }
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...opts, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

interface FileRow {
  perms: string;
  user: string;
  group: string;
  flags: string;
  link: string;
}

async function rpmFiles(rpm: string): Promise<Map<string, FileRow>> {
  const out = await run('rpm', ['-qp', '--qf', '[%{FILEMODES:perms}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}\\t%{FILEFLAGS:fflags}\\t%{FILENAMES}\\t%{FILELINKTOS}\\n]', rpm]);
  const m = new Map<string, FileRow>();
  for (const line of out.split('\n').filter((l) => l !== '')) {
    const [perms, user, group, flags, name, link] = line.split('\t');
    m.set(name as string, { perms: perms as string, user: user as string, group: group as string, flags: flags as string, link: link ?? '' });
  }
  return m;
}

/** `drwxr-xr-x` etc. of a directory tree, keyed by `prefix + relative path`. */
async function treePerms(dir: string, prefix: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = await fs.lstat(p);
      m.set(prefix + path.relative(dir, p), perms(st.mode, st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : '-'));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return m;
}

function perms(mode: number, type: string): string {
  const bits = 'rwxrwxrwx';
  return type + [...bits].map((c, i) => (mode & (1 << (8 - i)) ? c : '-')).join('');
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** What the snippet's header tells the admin to do: uncomment the <Location> blocks, put in the service's address. */
function activateSnippet(text: string, serviceHost: string): string {
  let on = false;
  const lines = text.split('\n').map((l) => {
    if (l.startsWith('#<Location')) on = true;
    const out = on ? l.replace(/^#/, '') : l;
    if (l.startsWith('#</Location>')) on = false;
    return out;
  });
  return lines.join('\n').replaceAll('127.0.0.1:8780', serviceHost);
}

function unitSettings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue;
    const i = line.indexOf('=');
    const k = line.slice(0, i);
    m.set(k, [...(m.get(k) ?? []), line.slice(i + 1)]);
  }
  return m;
}

/** What the packaged service's scrape token file holds in these tests. */
const SCRAPE_TOKEN = 'packaging-test-scrape-token';

describe('packaging: npm run package → tarball and RPMs', () => {
  let dir: string;
  let out: string;
  let version: string;
  let tarball: string;
  let serverRpm: string;
  let pluginRpm: string;
  let serverRpm2: string;
  let tree: string;
  let buildInfo: { version: string; gitHash: string; stamp: string; filesSha256: string };

  beforeAll(async () => {
    requirePackagingTools();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-pkg-'));
    out = path.join(dir, 'out');
    // the build npm test has just made (npm run build); --no-build packages it as it is
    const log = await run('bash', [path.join(ROOT, 'packaging/build.sh'), '--no-build', '--out', out], { cwd: ROOT });
    version = (JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const files = await fs.readdir(out);
    tarball = path.join(out, files.find((f) => f.endsWith('.tar.gz')) ?? '');
    serverRpm = path.join(out, files.find((f) => f.startsWith('olvm-backup-server-') && f.endsWith('.x86_64.rpm')) ?? '');
    pluginRpm = path.join(out, files.find((f) => f.startsWith('olvm-backup-ui-plugin-') && f.endsWith('.noarch.rpm')) ?? '');
    expect(log).toContain(path.basename(serverRpm));

    tree = path.join(dir, 'tree');
    await fs.mkdir(tree);
    await run('tar', ['-xzf', tarball, '-C', tree]);
    buildInfo = JSON.parse(await fs.readFile(path.join(tree, `olvm-backup-${version}/lib/olvm-backup/build-info.json`), 'utf8')) as typeof buildInfo;

    // a new release of the same code, as a packaging-only fix would make it
    const spec = path.join(tree, `olvm-backup-${version}/packaging/olvm-backup-server.spec`);
    const rb = path.join(dir, 'rpmbuild');
    await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${rb}`, '--define', `_sourcedir ${out}`, '--define', `_rpmdir ${path.join(dir, 'rpms2')}`, '--define', 'olvm_release 999', spec]);
    serverRpm2 = path.join(dir, 'rpms2', 'x86_64', `olvm-backup-server-${version}-999.x86_64.rpm`);
    await fs.access(serverRpm2);
  }, 900_000);

  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  test('the version is stamped with the git commit, the same in the service and the plugin bundle', async () => {
    const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short=10', 'HEAD'], { encoding: 'utf8' }).trim();
    expect(buildInfo).toMatchObject({ version, gitHash: head });
    expect(buildInfo.stamp).toMatch(new RegExp(`^${version.replace(/\./g, '\\.')}\\+g${head}(\\.dirty)?$`));
    expect(buildInfo.filesSha256).toMatch(/^[0-9a-f]{64}$/);
    const pluginStamp = JSON.parse(await fs.readFile(path.join(tree, `olvm-backup-${version}/share/olvm-backup-ui-plugin/olvm-backup/version.json`), 'utf8')) as { stamp: string };
    expect(pluginStamp.stamp).toBe(buildInfo.stamp);
    expect(path.basename(serverRpm)).toMatch(new RegExp(`^olvm-backup-server-${version.replace(/\./g, '\\.')}-1\\.\\d+\\.g${head}\\.x86_64\\.rpm$`));
  });

  test('the tarball runs as it is (no RPM): bin/olvm-backup finds its app and lists setup and serve', async () => {
    const top = path.join(tree, `olvm-backup-${version}`);
    for (const p of ['bin/olvm-backup', 'lib/olvm-backup/package.json', 'lib/olvm-backup/dist/backend/src/cli/main.js', 'lib/olvm-backup/packaging/config.example.yaml', 'share/olvm-backup-ui-plugin/olvm-backup.json', 'packaging/olvm-backup.service', 'packaging/olvm-backup-server.spec', 'packaging/olvm-backup-ui-plugin.spec', 'docs/install.md']) {
      await fs.access(path.join(top, p));
    }
    // no source maps, no dev dependencies, no native build leftovers
    const app = await treePerms(path.join(top, 'lib/olvm-backup'), '');
    const names = [...app.keys()];
    expect(names.filter((n) => /\.(map|cc|cpp|o|a)$|obj\.target|\/node_modules\/(typescript|jest|webpack|eslint|react|@types)\//.test(`/${n}`))).toEqual([]);
    const help = await run(path.join(top, 'bin/olvm-backup'), ['--help'], { env: { ...process.env, OLVM_BACKUP_NODE: process.execPath } });
    expect(help).toMatch(/\bsetup\b/);
    expect(help).toMatch(/\bserve\b/);
  });

  test('server RPM: exactly the expected files, with modes, owners and config flags', async () => {
    const files = await rpmFiles(serverRpm);
    const app = '/usr/lib/olvm-backup/';
    const fixed = new Map([...files].filter(([n]) => !n.startsWith(app)));
    expect(Object.fromEntries([...fixed].map(([n, r]) => [n, [r.perms, `${r.user}:${r.group}`, r.flags].filter((x) => x !== '').join(' ')]))).toEqual({
      '/etc/olvm-backup': 'drwxr-x--- root:olvm-backup',
      '/etc/olvm-backup/config.yaml': '-rw-r----- root:olvm-backup cn',
      '/usr/bin/olvm-backup': '-rwxr-xr-x root:root',
      '/usr/lib/firewalld': 'drwxr-xr-x root:root',
      '/usr/lib/firewalld/services': 'drwxr-xr-x root:root',
      '/usr/lib/firewalld/services/olvm-backup.xml': '-rw-r--r-- root:root',
      '/usr/lib/olvm-backup': 'drwxr-xr-x root:root',
      '/usr/lib/systemd/system/olvm-backup.service': '-rw-r--r-- root:root',
      '/usr/share/doc/olvm-backup-server/HOSTS.md': '-rw-r--r-- root:root d',
      '/usr/share/doc/olvm-backup-server/README.md': '-rw-r--r-- root:root d',
      '/usr/share/doc/olvm-backup-server/install.md': '-rw-r--r-- root:root d',
      '/var/lib/olvm-backup': 'drwxr-x--- olvm-backup:olvm-backup',
    });
    // the application: exactly the tarball's lib/olvm-backup, root-owned, modes as staged
    const staged = await treePerms(path.join(tree, `olvm-backup-${version}/lib/olvm-backup`), app);
    const packaged = new Map([...files].filter(([n]) => n.startsWith(app)).map(([n, r]) => [n, r.perms]));
    expect([...packaged.keys()].sort()).toEqual([...staged.keys()].sort());
    expect(Object.fromEntries([...packaged].filter(([n, p]) => staged.get(n) !== p))).toEqual({});
    expect([...files].filter(([n, r]) => n.startsWith(app) && (r.user !== 'root' || r.group !== 'root' || r.flags !== ''))).toEqual([]);
    expect([...packaged.values()].every((p) => ['drwxr-xr-x', '-rw-r--r--', '-rwxr-xr-x'].includes(p))).toBe(true);
    for (const addon of ['better-sqlite3/build/Release/better_sqlite3.node', 'zstd-napi/build/Release/binding.node']) expect(packaged.get(`${app}node_modules/${addon}`)).toBe('-rwxr-xr-x');

    const requires = (await run('rpm', ['-qp', '--requires', serverRpm])).split('\n');
    expect(requires).toEqual(expect.arrayContaining(['nodejs(abi20)', 'qemu-img', 'shadow-utils', 'systemd']));
    expect((await run('rpm', ['-qp', '--provides', serverRpm])).split('\n').filter((p) => /\.node|\.so/.test(p))).toEqual([]);
  });

  test('UI plugin RPM: noarch, the plugin linked into the engine, its config and the Apache snippet as noreplace config', async () => {
    const files = await rpmFiles(pluginRpm);
    const share = '/usr/share/olvm-backup-ui-plugin/';
    const fixed = new Map([...files].filter(([n]) => !n.startsWith(share)));
    expect(Object.fromEntries([...fixed].map(([n, r]) => [n, [r.perms, `${r.user}:${r.group}`, r.flags, r.link ? `-> ${r.link}` : ''].filter((x) => x !== '').join(' ')]))).toEqual({
      '/etc/httpd/conf.d/olvm-backup-proxy.conf': '-rw-r--r-- root:root cn',
      '/etc/ovirt-engine/ui-plugins/olvm-backup-config.json': '-rw-r--r-- root:root cn',
      '/usr/share/olvm-backup-ui-plugin': 'drwxr-xr-x root:root',
      '/usr/share/ovirt-engine/ui-plugins/olvm-backup': 'lrwxrwxrwx root:root -> /usr/share/olvm-backup-ui-plugin/olvm-backup',
      '/usr/share/ovirt-engine/ui-plugins/olvm-backup.json': 'lrwxrwxrwx root:root -> /usr/share/olvm-backup-ui-plugin/olvm-backup.json',
    });
    const staged = await treePerms(path.join(tree, `olvm-backup-${version}/share/olvm-backup-ui-plugin`), share);
    const packaged = new Map([...files].filter(([n]) => n.startsWith(share)).map(([n, r]) => [n, r.perms]));
    expect([...packaged.keys()].sort()).toEqual([...staged.keys()].sort());
    expect(Object.fromEntries([...packaged].filter(([n, p]) => staged.get(n) !== p))).toEqual({});
    expect(packaged.get(`${share}olvm-backup/version.json`)).toBe('-rw-r--r--');
    expect((await run('rpm', ['-qp', '--qf', '%{ARCH}', pluginRpm])).trim()).toBe('noarch');

    // WebAdmin's naming rules (ovirt-ui-plugin.md §1.1): the override is <descriptor basename>-config.json,
    // the resource folder is the descriptor's resourcePath
    const descriptor = JSON.parse(await fs.readFile(path.join(tree, `olvm-backup-${version}/share/olvm-backup-ui-plugin/olvm-backup.json`), 'utf8')) as { name: string; resourcePath: string };
    expect(fixed.has(`/usr/share/ovirt-engine/ui-plugins/${descriptor.resourcePath}`)).toBe(true);
    const override = JSON.parse(await fs.readFile(path.join(ROOT, 'packaging/olvm-backup-config.json'), 'utf8')) as { config: { serviceUrl: string } };
    expect(override.config.serviceUrl).toMatch(/^https:\/\/[^/]+\/olvm-backup$/);
  });

  test('scriptlets: %pre creates the user; removal stops the service; no start or plain restart anywhere', async () => {
    const scripts = await run('rpm', ['-qp', '--scripts', serverRpm]);
    const sections = new Map<string, string>();
    let cur = '';
    for (const line of scripts.split('\n')) {
      const m = /^(\w+) scriptlet \(using \/bin\/sh\):$/.exec(line);
      if (m) {
        cur = m[1] as string;
        sections.set(cur, '');
      } else if (cur) sections.set(cur, `${sections.get(cur) ?? ''}${line}\n`);
    }
    expect([...sections.keys()]).toEqual(['preinstall', 'postinstall', 'preuninstall', 'postuninstall', 'posttrans']);
    expect(sections.get('preinstall')).toMatch(/useradd -r -g olvm-backup -d \/var\/lib\/olvm-backup -s \/sbin\/nologin/);
    expect(sections.get('preuninstall')).toMatch(/if \[ "\$1" -eq 0 \]; then\s+systemctl --no-reload disable --now olvm-backup\.service/);
    const code = scripts.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
    expect(code).not.toMatch(/systemctl (restart|start|reload-or-restart)\b/);
    expect(code.match(/try-restart/g)).toHaveLength(1);
    expect(sections.get('posttrans')).toContain('try-restart');
  });

  test('install, upgrade, reinstall and erase with the real rpm in a throwaway root: user, systemd calls, restart only for other code', async () => {
    const work = path.join(dir, 'install');
    await run(path.join(ROOT, 'packaging/test-install.sh'), [work, serverRpm, serverRpm2]);
    const calls = async (phase: string): Promise<string[]> => (await fs.readFile(path.join(work, `systemctl-${phase}.log`), 'utf8')).split('\n').filter((l) => l !== '');
    const r = path.join(work, 'root');

    const passwd = await fs.readFile(path.join(r, 'etc/passwd'), 'utf8');
    const user = /^olvm-backup:x:(\d+):(\d+):[^:]*:\/var\/lib\/olvm-backup:\/sbin\/nologin$/m.exec(passwd);
    expect(user).not.toBeNull();
    expect(await fs.readFile(path.join(r, 'etc/group'), 'utf8')).toMatch(/^olvm-backup:x:\d+:/m);
    expect(Number(user?.[1])).toBeLessThan(1000); // a system account

    expect(await calls('install')).toEqual(['--no-reload preset olvm-backup.service', 'daemon-reload', 'is-active --quiet olvm-backup.service']);
    // running the same code: a new release does not restart it
    expect(await calls('upgrade-same-code')).toEqual(['daemon-reload', 'daemon-reload', 'is-active --quiet olvm-backup.service']);
    // running an older build: restarted (gracefully, by the unit's stop)
    expect(await calls('reinstall-other-code')).toEqual(['daemon-reload', 'daemon-reload', 'is-active --quiet olvm-backup.service', 'try-restart olvm-backup.service']);
    // stopped: left stopped
    expect(await calls('reinstall-stopped')).toEqual(['daemon-reload', 'daemon-reload', 'is-active --quiet olvm-backup.service']);
    expect(await calls('erase')).toEqual(['--no-reload disable --now olvm-backup.service', 'daemon-reload']);

    // erase keeps the user, the repository and the admin's edited config
    expect(await fs.readFile(path.join(r, 'etc/passwd'), 'utf8')).toMatch(/^olvm-backup:/m);
    await fs.access(path.join(r, 'var/lib/olvm-backup/repository/config.json'));
    expect(await fs.readFile(path.join(r, 'etc/olvm-backup/config.yaml.rpmsave'), 'utf8')).toContain('# edited by the admin');
    await expect(fs.access(path.join(work, 'usr-up/lib/olvm-backup/build-info.json'))).rejects.toThrow();

    // the unit as installed passes systemd-analyze verify, with a low exposure score
    expect([(await fs.readFile(path.join(work, 'verify.rc'), 'utf8')).trim(), (await fs.readFile(path.join(work, 'verify.txt'), 'utf8')).trim()]).toEqual(['0', '']);
    const exposure = /Overall exposure level for olvm-backup\.service: ([\d.]+)/.exec(await fs.readFile(path.join(work, 'security.txt'), 'utf8'));
    expect(Number(exposure?.[1])).toBeLessThanOrEqual(2.5);
  });

  test('systemd unit: graceful stop, reload, hardening that leaves every data path writable and the config readable', async () => {
    const u = unitSettings(await fs.readFile(path.join(ROOT, 'packaging/olvm-backup.service'), 'utf8'));
    const one = (k: string): string | undefined => u.get(k)?.at(-1);
    expect([one('User'), one('Group'), one('KillSignal'), one('KillMode'), one('Restart'), one('ProtectSystem'), one('ProtectHome'), one('NoNewPrivileges')]).toEqual([
      'olvm-backup',
      'olvm-backup',
      'SIGTERM',
      'mixed',
      'on-failure',
      'strict',
      'yes',
      'yes',
    ]);
    // the service waits up to 60 s for running jobs' cleanup (main.ts STOP_GRACE_MS): the unit gives more
    expect(Number(/^(\d+)s$/.exec(one('TimeoutStopSec') ?? '')?.[1])).toBeGreaterThan(60);
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('ExecStart')).toBe('/usr/bin/olvm-backup serve --config /etc/olvm-backup/config.yaml');
    expect(u.has('MemoryDenyWriteExecute')).toBe(false); // V8's JIT

    const writable = (u.get('ReadWritePaths') ?? []).flatMap((v) => v.split(/\s+/));
    const under = (p: string, dirs: string[]): boolean => dirs.some((d) => p === d || p.startsWith(`${d}/`));
    const shipped = YAML.parse(await fs.readFile(path.join(ROOT, 'packaging/config.example.yaml'), 'utf8')) as { dataDir: string; repository: { path: string }; catalog: { path: string }; scratch: { path: string }; engine: { passwordFile: string }; hosts: { directory: string } };
    for (const p of [shipped.dataDir, shipped.repository.path, shipped.catalog.path, shipped.scratch.path, '/var/lib/olvm-backup']) expect([p, under(p, writable)]).toEqual([p, true]);
    // what the service only reads must not sit where the sandbox hides it
    const hidden = ['/home', '/root', '/run/user', '/tmp', '/var/tmp', ...(u.get('InaccessiblePaths') ?? [])];
    for (const p of [shipped.engine.passwordFile, shipped.hosts.directory, '/etc/olvm-backup/config.yaml', '/etc/olvm-backup/ssh/id_ed25519']) expect([p, under(p, hidden)]).toEqual([p, false]);
  });

  test('the installed payload serves: /api/v1/health answers with the stamped version, also through the shipped Apache snippet (API and WebSocket)', async () => {
    const payload = path.join(dir, 'payload');
    await fs.mkdir(payload);
    await run('sh', ['-c', `rpm2archive - < '${serverRpm}' | tar -xz -C '${payload}'`]);
    const sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), seed: false });
    const pw = path.join(dir, 'pw');
    await fs.writeFile(pw, `${sim.users.admin.password}\n`, { mode: 0o600 });
    // the health check's details (the version) are for a caller with the scrape token
    const scrape = path.join(dir, 'scrape-token');
    await fs.writeFile(scrape, `${SCRAPE_TOKEN}\n`, { mode: 0o600 });
    const proc = spawn(
      path.join(payload, 'usr/bin/olvm-backup'),
      ['serve', '--data-dir', path.join(dir, 'data'), '--engine-url', sim.baseUrl, '--engine-user', sim.users.admin.name, '--engine-password-file', pw, '--qmp-dir', sim.qmpDir, '--listen-host', '127.0.0.1', '--port', '0', '--scrape-token-file', scrape],
      { env: { ...process.env, OLVM_BACKUP_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    proc.stdout.on('data', (b: Buffer) => (output += b.toString('utf8')));
    proc.stderr.on('data', (b: Buffer) => (output += b.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setInterval(() => {
          const m = /"url":"(http:[^"]+)","msg":"listening"/.exec(output);
          if (m?.[1]) {
            clearInterval(t);
            resolve(m[1]);
          }
        }, 50);
        void exited.then((c) => {
          clearInterval(t);
          reject(new Error(`the packaged service exited (${c}):\n${output}`));
        });
      });
      expect(await (await fetch(`${url}/api/v1/health`)).json()).toEqual({ status: 'ok' });
      const health = (await (await fetch(`${url}/api/v1/health`, { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } })).json()) as { status: string; version: string };
      expect(health).toMatchObject({ status: 'ok', version: buildInfo.stamp });
      await throughApache(url, sim);
    } finally {
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      await sim.close();
    }
  });

  /** The engine's httpd stand-in: Debian's apache2 with only the modules the snippet names. */
  async function throughApache(serviceUrl: string, sim: EngineSim): Promise<void> {
    const payload = path.join(dir, 'plugin-payload');
    await fs.mkdir(payload, { recursive: true });
    await run('sh', ['-c', `rpm2archive - < '${pluginRpm}' | tar -xz -C '${payload}'`]);
    const shipped = await fs.readFile(path.join(payload, 'etc/httpd/conf.d/olvm-backup-proxy.conf'), 'utf8');
    expect(shipped.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'))).toEqual([]); // inactive as installed
    const ap = path.join(dir, 'apache');
    await fs.mkdir(ap);
    await fs.writeFile(path.join(ap, 'olvm-backup-proxy.conf'), activateSnippet(shipped, new URL(serviceUrl).host));
    const port = await freePort();
    const mods = '/usr/lib/apache2/modules';
    await fs.writeFile(
      path.join(ap, 'httpd.conf'),
      [
        `ServerRoot "${ap}"`,
        `DefaultRuntimeDir "${ap}"`,
        'ServerName localhost',
        `Listen 127.0.0.1:${port}`,
        `PidFile "${ap}/httpd.pid"`,
        `ErrorLog "${ap}/error.log"`,
        'User nobody',
        'Group nogroup',
        ...['mpm_event', 'authz_core', 'proxy', 'proxy_http', 'proxy_wstunnel'].map((m) => `LoadModule ${m}_module ${mods}/mod_${m}.so`),
        `Include "${ap}/olvm-backup-proxy.conf"`,
        '',
      ].join('\n'),
    );
    const httpd = spawn('apache2', ['-f', path.join(ap, 'httpd.conf'), '-DFOREGROUND'], { stdio: 'ignore' });
    const stopped = new Promise<void>((resolve) => httpd.once('exit', () => resolve()));
    try {
      const base = `http://127.0.0.1:${port}/olvm-backup`;
      let health: { version?: string } = {};
      for (let i = 0; i < 100 && health.version === undefined; i++) {
        health = await fetch(`${base}/api/v1/health`, { headers: { Authorization: `Bearer ${SCRAPE_TOKEN}` } }).then(
          async (r) => (r.ok ? ((await r.json()) as { version: string }) : {}),
          () => new Promise((r) => setTimeout(() => r({}), 100)),
        );
      }
      expect(health.version).toBe(buildInfo.stamp);
      // the live events, as the portal's page opens them: same origin as the engine
      const token = await ssoToken(sim, 'admin');
      const ws = new WebSocket(`ws://127.0.0.1:${port}/olvm-backup/api/v1/events`, { headers: { Origin: new URL(sim.baseUrl).origin } });
      const types: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no snapshot through the proxy; got ${JSON.stringify(types)}`)), 15_000);
        ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
        ws.on('message', (d: Buffer) => {
          types.push((JSON.parse(d.toString('utf8')) as { type: string }).type);
          if (types.includes('snapshot')) {
            clearTimeout(t);
            resolve();
          }
        });
        ws.on('error', reject);
      });
      ws.close();
      expect(types.slice(0, 2)).toEqual(['ready', 'snapshot']);
    } finally {
      httpd.kill('SIGTERM');
      await stopped;
    }
  }
});
