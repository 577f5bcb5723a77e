import { promises as fs, readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { AppError } from '../../backend/src/errors';
import { EngineClient, mapDisks, parseOvf, SUPER_USER_ROLE_ID, type EngineAuth } from '../../backend/src/engine';
import { EngineSim } from '../engine-sim';

async function failure(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

// ---------------------------------------------------------------------------------------------
// A scripted loopback engine: exact wire shapes the simulator may not produce (2^53 overflow,
// lone objects for lists, other fault shapes, both SSO error shapes), and what the client sends.

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
type Reply = { status: number; body?: unknown; type?: string } | 'hang' | 'reset';
type Route = { method: string; path: RegExp; reply: (req: Seen) => Reply };

class ScriptedEngine {
  readonly seen: Seen[] = [];
  routes: Route[] = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      this.seen.push(seen);
      const pathname = new URL(seen.url, 'http://x').pathname;
      const route = this.routes.find((r) => r.method === seen.method && r.path.test(pathname));
      const reply: Reply = route ? route.reply(seen) : { status: 404 };
      if (reply === 'hang') return;
      if (reply === 'reset') {
        req.socket.destroy();
        return;
      }
      const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'Content-Type': reply.type ?? 'application/json' });
      res.end(body);
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/ovirt-engine`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  route(method: string, p: RegExp, reply: (req: Seen) => Reply): void {
    this.routes.unshift({ method, path: p, reply });
  }

  api(): Seen[] {
    return this.seen.filter((s) => s.url.startsWith('/ovirt-engine/api'));
  }

  logins(): Seen[] {
    return this.seen.filter((s) => s.url.startsWith('/ovirt-engine/sso/oauth/token'));
  }
}

describe('engine client against a scripted loopback engine', () => {
  let engine: ScriptedEngine;
  let baseUrl: string;
  let tokenSeq = 0;
  const password: EngineAuth = { kind: 'password', user: 'admin@internal', password: 's3cr3t-pw' };

  beforeEach(async () => {
    engine = new ScriptedEngine();
    baseUrl = await engine.start();
    engine.route('POST', /\/sso\/oauth\/token$/, () => ({
      status: 200,
      body: { access_token: `tok-${++tokenSeq}`, token_type: 'bearer', scope: 'ovirt-app-api', exp: '9223372036854775807' },
    }));
  });

  afterEach(async () => {
    await engine.stop();
  });

  const client = (auth: EngineAuth = password, extra: { timeoutMs?: number } = {}): EngineClient => new EngineClient({ baseUrl, auth, ...extra });

  test('password grant: form body, exact Accept, then Bearer + Version 4 + JSON on API calls, no Filter', async () => {
    engine.route('GET', /\/api$/, () => ({
      status: 200,
      body: {
        product_info: { name: 'oVirt Engine', vendor: 'ovirt.org', version: { major: '4', minor: '5', build: '5', revision: '1', full_version: '4.5.5-1.el8' } },
        authenticated_user: { href: '/ovirt-engine/api/users/u1', id: 'u1' },
        effective_user: { href: '/ovirt-engine/api/users/u1', id: 'u1' },
        time: 1700000000000,
      },
    }));
    const c = client();
    const info = await c.getApiInfo();
    expect(info).toEqual({
      productName: 'oVirt Engine',
      vendor: 'ovirt.org',
      version: { major: 4, minor: 5, build: 5, revision: 1, fullVersion: '4.5.5-1.el8' },
      authenticatedUserId: 'u1',
      effectiveUserId: 'u1',
      time: new Date(1700000000000),
    });
    const [login] = engine.logins();
    expect(login?.headers.accept).toBe('application/json');
    expect(login?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(login?.body))).toEqual({
      grant_type: 'password',
      scope: 'ovirt-app-api',
      username: 'admin@internal',
      password: 's3cr3t-pw',
    });
    const [call] = engine.api();
    expect(call?.headers).toMatchObject({ authorization: `Bearer tok-${tokenSeq}`, version: '4', accept: 'application/json' });
    expect(call?.headers.filter).toBeUndefined();
    engine.route('POST', /\/services\/sso-logout$/, () => ({ status: 200, body: {} }));
    await c.close();
    const logout = engine.seen.find((s) => s.url.endsWith('/services/sso-logout'));
    expect(Object.fromEntries(new URLSearchParams(logout?.body))).toEqual({ scope: 'ovirt-app-api', token: `tok-${tokenSeq}` });
  });

  test.each([
    ['{error, error_description}', { error: 'access_denied', error_description: "Cannot authenticate user 'admin@internal'" }],
    ['{error_code, error}', { error_code: 'access_denied', error: "Cannot authenticate user 'admin@internal'" }],
  ])('a refused login in the SSO shape %s is ENGINE_AUTH_FAILED naming the user, never the password', async (_shape, body) => {
    engine.route('POST', /\/sso\/oauth\/token$/, () => ({ status: 400, body }));
    const err = await failure(client().getApiInfo());
    expect(err.code).toBe('ENGINE_AUTH_FAILED');
    expect(err.message).toContain('admin@internal');
    expect(err.message).toContain('access_denied');
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('s3cr3t-pw');
  });

  test('concurrent first calls share one login; a 401 gets one new login and one retry', async () => {
    const valid = new Set<string>();
    engine.route('POST', /\/sso\/oauth\/token$/, () => {
      const t = `tok-${++tokenSeq}`;
      valid.add(t);
      return { status: 200, body: { access_token: t, token_type: 'bearer' } };
    });
    engine.route('GET', /\/api\/tags$/, (req) =>
      valid.has((req.headers.authorization ?? '').slice(7)) ? { status: 200, body: {} } : { status: 401, body: '<html>Unauthorized</html>', type: 'text/html' },
    );
    const c = client();
    await Promise.all([c.listTags(), c.listTags(), c.listTags()]);
    expect(engine.logins()).toHaveLength(1);
    valid.clear(); // the engine forgot every session
    await expect(c.listTags()).resolves.toEqual([]);
    expect(engine.logins()).toHaveLength(2);
    // a token refused even right after a new login is an auth failure, not a loop
    engine.route('GET', /\/api\/tags$/, () => ({ status: 401, body: '' }));
    const err = await failure(c.listTags());
    expect(err.code).toBe('ENGINE_AUTH_FAILED');
    expect(err.message).toMatch(/admin@internal.*after a new login/);
    expect(engine.logins()).toHaveLength(3);
    // logout is best effort: an engine refusing it (404 here) does not make close() throw
    await expect(c.close()).resolves.toBeUndefined();
  });

  test('a bearer token: Filter: true, no login, a 401 is ENGINE_AUTH_FAILED at once', async () => {
    engine.route('GET', /\/api\/vms$/, () => ({ status: 401, body: '' }));
    const c = client({ kind: 'bearer', token: 'portal-token' });
    const err = await failure(c.listVms());
    expect(err.code).toBe('ENGINE_AUTH_FAILED');
    expect(err.details).toMatchObject({ status: 401, method: 'GET', path: '/ovirt-engine/api/vms' });
    expect(engine.logins()).toHaveLength(0);
    expect(engine.api()[0]?.headers).toMatchObject({ authorization: 'Bearer portal-token', filter: 'true' });
    await c.close();
    expect(engine.seen.filter((s) => s.url.includes('sso-logout'))).toHaveLength(0);
  });

  test('JSON quirks: strings for booleans and numbers, epoch dates, wrapped lists, missing keys, lone objects', async () => {
    engine.route('GET', /\/api\/vms\/v1$/, () => ({
      status: 200,
      body: {
        id: 'v1',
        name: 'web01',
        status: 'UP',
        memory: '4294967296',
        stateless: 'false',
        creation_time: 1700000000000,
        cpu: { architecture: 'x86_64', topology: { cores: '2', sockets: '2', threads: '1' } },
        os: { type: 'rhel_8x64', boot: { devices: { device: 'hd' } } },
        cluster: { href: '/ovirt-engine/api/clusters/c1', id: 'c1' },
        custom_properties: { custom_property: { name: 'hugepages', value: '1048576' } },
        initialization: { configuration: { type: 'ovf', data: '<ovf:Envelope/>' } },
        disk_attachments: {},
        nics: { nic: [{ id: 'n1', name: 'nic1', interface: 'virtio', mac: { address: '56:6f:1a:00:00:01' }, linked: 'true', plugged: 'TRUE' }] },
      },
    }));
    engine.route('GET', /\/api\/vms\/v1\/tags$/, () => ({ status: 200, body: {} }));
    const vm = await client().getVm('v1', { allContent: true, withDisks: true, withNics: true, withTags: true });
    expect(vm).toMatchObject({
      id: 'v1',
      name: 'web01',
      description: '',
      status: 'up',
      memoryBytes: 4294967296,
      stateless: false,
      creationTime: new Date(1700000000000),
      cpu: { sockets: 2, cores: 2, threads: 1, architecture: 'x86_64' },
      osType: 'rhel_8x64',
      bootDevices: ['hd'],
      clusterId: 'c1',
      hostId: undefined,
      customProperties: [{ name: 'hugepages', value: '1048576' }],
      configuration: { type: 'ovf', data: '<ovf:Envelope/>' },
      diskAttachments: [],
      nics: [{ id: 'n1', name: 'nic1', interface: 'virtio', mac: '56:6f:1a:00:00:01', linked: true, plugged: true }],
      tags: [],
    });
    const sent = engine.api()[0]?.url ?? '';
    expect(decodeURIComponent(sent)).toContain('all_content=true');
    expect(decodeURIComponent(sent)).toContain('follow=disk_attachments.disk,nics,tags');
  });

  test('a 64-bit size beyond 2^53 is refused, not rounded', async () => {
    engine.route('GET', /\/api\/disks\/d1$/, () => ({
      status: 200,
      body: { id: 'd1', alias: 'big', provisioned_size: '18014398509481984', format: 'raw', status: 'ok' },
    }));
    const err = await failure(client().getDisk('d1'));
    expect(err.code).toBe('ENGINE_PROTOCOL_ERROR');
    expect(err.message).toMatch(/disk d1 with provisioned_size '18014398509481984'/);
  });

  test('an engine ignoring follow still yields every disk: attachments, then each disk read', async () => {
    engine.route('GET', /\/api\/vms\/v2\/diskattachments$/, () => ({
      status: 200,
      body: {
        disk_attachment: [
          { id: 'd1', bootable: 'true', interface: 'virtio_scsi', active: 'true', read_only: 'false', disk: { href: '/ovirt-engine/api/disks/d1', id: 'd1' } },
        ],
      },
    }));
    engine.route('GET', /\/api\/disks\/d1$/, () => ({
      status: 200,
      body: {
        id: 'd1',
        alias: 'web01_Disk1',
        description: 'system backup=0',
        provisioned_size: '21474836480',
        actual_size: '3221225472',
        format: 'cow',
        sparse: 'true',
        status: 'ok',
        storage_domains: { storage_domain: [{ id: 'sd1' }] },
      },
    }));
    const disks = await client().listVmDisks('v2');
    expect(disks).toHaveLength(1);
    expect(disks[0]).toMatchObject({ diskId: 'd1', bootable: true, interface: 'virtio_scsi', active: true });
    expect(disks[0]?.disk).toMatchObject({ provisionedSize: 21474836480, format: 'cow', storageDomainIds: ['sd1'] });
    expect(mapDisks(disks, [{ deviceId: 'ua-d1' }]).excluded).toHaveLength(1);
  });

  test.each([
    ['fault object', 400, { fault: { reason: 'Incomplete parameters', detail: 'Vm [name] required for add' } }, 'application/json', 'ENGINE_HTTP_ERROR', 'Incomplete parameters', 'Vm [name] required for add'],
    ['bare reason/detail', 409, { reason: 'Operation Failed', detail: '[Cannot run VM. VM is running.]' }, 'application/json', 'ENGINE_HTTP_ERROR', 'Operation Failed', '[Cannot run VM. VM is running.]'],
    ['xml fault', 403, '<fault><reason>Operation Failed</reason><detail>[User is not authorized &amp; denied]</detail></fault>', 'application/xml', 'ENGINE_HTTP_ERROR', 'Operation Failed', '[User is not authorized & denied]'],
    ['html from the proxy', 503, '<html><body><h1>Service Unavailable</h1></body></html>', 'text/html', 'ENGINE_HTTP_ERROR', 'Service Unavailable', 'Service Unavailable'],
    ['bare 404', 404, undefined, 'application/json', 'ENGINE_NOT_FOUND', 'Not Found', ''],
  ])('a %s becomes a coded error with status, method, path, reason, detail', async (_n, status, body, type, code, reason, detail) => {
    engine.route('POST', /\/api\/vms\/v3\/start$/, () => ({ status, body, type }));
    const err = await failure(client().startVm('v3', { pause: true }));
    expect(err.code).toBe(code);
    expect(err.details).toEqual({ status, method: 'POST', path: '/ovirt-engine/api/vms/v3/start', reason, detail });
    expect(err.message).toContain(`POST /ovirt-engine/api/vms/v3/start failed with ${status}`);
  });

  test('an action answered 200 with status failed is still a failure; the start body says pause', async () => {
    engine.route('POST', /\/api\/vms\/v3\/start$/, () => ({ status: 200, body: { status: 'failed', fault: { reason: 'Operation Failed', detail: '[no host]' } } }));
    const err = await failure(client().startVm('v3', { pause: true }));
    expect(err.code).toBe('ENGINE_HTTP_ERROR');
    expect(err.details).toMatchObject({ reason: 'Operation Failed', detail: '[no host]' });
    const start = engine.api().find((s) => s.url.endsWith('/start'));
    expect(JSON.parse(start?.body ?? '')).toEqual({ pause: 'true' });
    expect(start?.headers['content-type']).toBe('application/json');
  });

  test('a 200 that is not JSON is ENGINE_PROTOCOL_ERROR', async () => {
    engine.route('GET', /\/api\/hosts$/, () => ({ status: 200, body: '<hosts/>', type: 'application/xml' }));
    const err = await failure(client().listHosts());
    expect(err.code).toBe('ENGINE_PROTOCOL_ERROR');
    expect(err.message).toMatch(/application\/xml, not json/);
  });

  test('a hanging engine is ENGINE_TIMEOUT; an aborted call is ENGINE_ABORTED', async () => {
    engine.route('GET', /\/api\/clusters$/, () => 'hang');
    const c = client(password, { timeoutMs: 300 });
    const t0 = Date.now();
    const err = await failure(c.listClusters());
    expect(err.code).toBe('ENGINE_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(5000);
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('user cancelled')), 50);
    const aborted = await failure(c.listClusters({ signal: ctl.signal, timeoutMs: 10_000 }));
    expect(aborted.code).toBe('ENGINE_ABORTED');
  });

  test('a duplicate custom_id is replaced by a fresh one; events carry our origin and the vm link', async () => {
    let n = 0;
    engine.route('POST', /\/api\/events$/, (req) => {
      const b = JSON.parse(req.body) as Record<string, unknown>;
      if (++n === 1) {
        return { status: 400, body: { fault: { reason: 'Operation Failed', detail: '[Cannot add Event. Event with the same custom id and origin already exists.]' } } };
      }
      return { status: 201, body: { id: '77', index: '77', code: '12001', severity: b.severity, time: 1700000000000, description: b.description, origin: b.origin, custom_id: b.custom_id } };
    });
    const ev = await client().addEvent({ description: 'Backup of web01 finished', severity: 'normal', vmId: 'v1' });
    const posts = engine.api().filter((s) => s.url.endsWith('/events')).map((s) => JSON.parse(s.body) as Record<string, unknown>);
    expect(posts).toHaveLength(2);
    expect(posts[1]).toMatchObject({ origin: 'olvm-backup', severity: 'normal', vm: { id: 'v1' } });
    expect(posts[0]?.custom_id).not.toEqual(posts[1]?.custom_id);
    expect(ev).toMatchObject({ id: '77', origin: 'olvm-backup', customId: Number(posts[1]?.custom_id), time: new Date(1700000000000) });
  });

  test('a kept-alive socket reset under a read is retried once; under a write it is an error', async () => {
    let n = 0;
    engine.route('GET', /\/api\/tags$/, () => (++n === 2 ? 'reset' : { status: 200, body: { tag: [{ id: 't1', name: 'daily' }] } }));
    const c = client();
    await c.listTags();
    await expect(c.listTags()).resolves.toEqual([{ id: 't1', name: 'daily', description: '', parentId: undefined }]);
    expect(n).toBe(3);
    engine.route('POST', /\/api\/tags$/, () => 'reset');
    const err = await failure(c.addTag({ name: 'weekly' }));
    expect(err.code).toBe('ENGINE_UNREACHABLE');
    expect(engine.api().filter((s) => s.method === 'POST')).toHaveLength(1);
  });

  test('connection refused and an unknown host are ENGINE_UNREACHABLE', async () => {
    const closed = new ScriptedEngine();
    const closedUrl = await closed.start();
    await closed.stop();
    const refused = await failure(new EngineClient({ baseUrl: closedUrl, auth: password }).listVms());
    expect(refused.code).toBe('ENGINE_UNREACHABLE');
    expect(refused.message).toMatch(/ECONNREFUSED/);
    const dns = await failure(new EngineClient({ baseUrl: 'https://no-such-engine.invalid/ovirt-engine', auth: password, timeoutMs: 20_000 }).listVms());
    expect(dns.code).toBe('ENGINE_UNREACHABLE');
  });
});

// ---------------------------------------------------------------------------------------------
// The engine simulator (test/engine-sim): the same client against a full engine model.

/** A user's SSO token the way WebAdmin gets one (what a portal user hands to the backend). */
function ssoToken(sim: EngineSim, user: { name: string; password: string }): Promise<string> {
  const body = new URLSearchParams({ grant_type: 'password', scope: 'ovirt-app-api', username: user.name, password: user.password }).toString();
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${sim.baseUrl}/sso/oauth/token`,
      {
        method: 'POST',
        ca: sim.caFile ? readFileSync(sim.caFile) : undefined,
        headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const reply = JSON.parse(Buffer.concat(chunks).toString()) as { access_token?: string };
          if (reply.access_token) resolve(reply.access_token);
          else reject(new Error(`no token for ${user.name}: ${Buffer.concat(chunks).toString()}`));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('engine client against the engine simulator', () => {
  let dir: string;
  let sim: EngineSim;
  let admin: EngineClient;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-engine-client-'));
    sim = await EngineSim.start({ dataDir: dir, tls: true, seed: true });
    admin = new EngineClient({
      baseUrl: sim.baseUrl,
      caFile: sim.caFile,
      auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password },
    });
  });

  afterAll(async () => {
    await admin?.close();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('TLS with the engine CA file works; without it the certificate is refused (ENGINE_TLS_ERROR)', async () => {
    const info = await admin.getApiInfo();
    expect(info.version?.major).toBe(4);
    expect(info.authenticatedUserId).toBeTruthy();
    const user = await admin.getCurrentUser();
    expect(user.id).toBe(info.authenticatedUserId);
    // the API names users by authz, not profile: admin@internal-authz
    expect(user.userName).toMatch(/^admin@internal/);
    const noCa = new EngineClient({ baseUrl: sim.baseUrl, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    const err = await failure(noCa.getApiInfo());
    expect(err.code).toBe('ENGINE_TLS_ERROR');
  });

  test('a refused login names the user and not the password', async () => {
    const bad = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.users.admin.name, password: 'wrong-pw-123' } });
    const err = await failure(bad.listVms());
    expect(err.code).toBe('ENGINE_AUTH_FAILED');
    expect(err.message).toContain(sim.users.admin.name);
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('wrong-pw-123');
  });

  test('inventory reads parse into typed objects: VMs, disks, NICs, hosts, clusters, domains, OVF', async () => {
    const vms = await admin.listVms();
    expect(vms.map((v) => v.id).sort()).toEqual([...sim.vmIds()].sort());
    const first = vms[0];
    if (!first) throw new Error('the seeded simulator has no VMs');
    const vm = await admin.getVm(first.id, { allContent: true, withDisks: true, withNics: true, withTags: true });
    expect(typeof vm.memoryBytes).toBe('number');
    expect(vm.clusterId).toBeTruthy();
    expect(vm.diskAttachments?.length).toBeGreaterThan(0);
    for (const a of vm.diskAttachments ?? []) {
      expect(a.disk?.id).toBe(a.diskId);
      expect(typeof a.disk?.provisionedSize).toBe('number');
      expect(a.disk?.storageDomainIds.length).toBeGreaterThan(0);
    }
    expect(Array.isArray(vm.nics)).toBe(true);
    expect(Array.isArray(vm.tags)).toBe(true);

    const ovf = parseOvf(vm.configuration?.data ?? '');
    expect(ovf.vmId).toBe(vm.id);
    expect(ovf.name).toBe(vm.name);
    expect(ovf.disks.map((d) => d.diskId).sort()).toEqual((vm.diskAttachments ?? []).map((a) => a.diskId).sort());
    expect(ovf.nics.map((n) => n.mac).sort()).toEqual((vm.nics ?? []).map((n) => n.mac).sort());

    const nics = await admin.listVmNics(vm.id, { withProfiles: true });
    expect(nics.map((n) => n.id).sort()).toEqual((vm.nics ?? []).map((n) => n.id).sort());
    const profileId = nics[0]?.vnicProfileId ?? nics[0]?.vnicProfile?.id;
    expect(profileId).toBeTruthy();
    const profile = await admin.getVnicProfile(profileId ?? '');
    expect(profile.name).toBe(ovf.nics[0]?.vnicProfile);

    const byName = await admin.findVmByName(vm.name);
    expect(byName?.id).toBe(vm.id);
    expect(await admin.findVmByName(`${vm.name}-does-not-exist`)).toBeUndefined();

    const hosts = await admin.listHosts();
    expect(hosts.length).toBeGreaterThan(0);
    expect(hosts[0]?.address).toBeTruthy();
    const clusters = await admin.listClusters();
    expect(clusters.map((c) => c.id)).toContain(vm.clusterId);
    const cluster = await admin.getCluster(vm.clusterId ?? '');
    expect(cluster.version?.major).toBe(4);
    const domains = await admin.listStorageDomains();
    const sdId = vm.diskAttachments?.[0]?.disk?.storageDomainIds[0] ?? '';
    expect(domains.map((d) => d.id)).toContain(sdId);
    expect((await admin.getStorageDomain(sdId)).name).toBeTruthy();
  });

  test('a portal user\'s bearer token: Filter: true hides foreign VMs (ENGINE_NOT_FOUND); expiry is ENGINE_AUTH_FAILED', async () => {
    const token = await ssoToken(sim, sim.users.plain);
    const portal = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'bearer', token } });
    const visible = await portal.listVms();
    expect(visible.map((v) => v.name)).toEqual(['web01']);
    // filtered replies never say where a VM runs
    expect(visible[0]?.hostId).toBeUndefined();
    const app01 = sim.vmByName('app01');
    const err = await failure(portal.getVm(app01.id));
    expect(err.code).toBe('ENGINE_NOT_FOUND');
    expect(err.details).toMatchObject({ status: 404, method: 'GET', path: `/ovirt-engine/api/vms/${app01.id}` });
    const me = await portal.getCurrentUser();
    expect(me.userName).toMatch(/^user1@internal/);
    // system roles (ovirt-ui-plugin.md §5.9 item 3): user1's UserRole is on web01, so he has only
    // Everyone's UserProfileEditor there; the admin SuperUser too
    const upe = { id: 'def00021-0000-0000-0000-def000000015', name: 'UserProfileEditor' };
    expect(await portal.listSystemRoles(me.id)).toEqual([upe]);
    const adminRoles = await admin.listSystemRoles((await admin.getCurrentUser()).id);
    expect(adminRoles).toHaveLength(2);
    expect(adminRoles).toEqual(expect.arrayContaining([{ id: SUPER_USER_ROLE_ID, name: 'SuperUser' }, upe]));

    sim.expireTokens(sim.users.plain.name);
    const expired = await failure(portal.listVms());
    expect(expired.code).toBe('ENGINE_AUTH_FAILED');
    await portal.close();
  });

  test('the service account logs in again when its token expires, and the call succeeds', async () => {
    const before = await admin.listVms();
    sim.expireTokens(sim.users.admin.name);
    const after = await admin.listVms();
    expect(after.map((v) => v.id).sort()).toEqual(before.map((v) => v.id).sort());
  });

  test('an injected fault carries status, method and path', async () => {
    const id = sim.vmIds()[0] ?? '';
    sim.failNext({ method: 'GET', pathPrefix: `/vms/${id}`, status: 409, times: 1 });
    const err = await failure(admin.getVm(id));
    expect(err.code).toBe('ENGINE_HTTP_ERROR');
    expect(err.details).toMatchObject({ status: 409, method: 'GET', path: `/ovirt-engine/api/vms/${id}` });
    expect(String(err.details?.detail)).toMatch(/Simulated failure/);
    await expect(admin.getVm(id)).resolves.toMatchObject({ id });
  });

  test('a hanging request is ENGINE_TIMEOUT and the next call works', async () => {
    sim.hangNext({ method: 'GET', pathPrefix: '/hosts' });
    const err = await failure(admin.listHosts({ timeoutMs: 500 }));
    expect(err.code).toBe('ENGINE_TIMEOUT');
    await expect(admin.listHosts()).resolves.not.toHaveLength(0);
  });

  test('start paused, wait for paused, stop, wait for down', async () => {
    const vms = await admin.listVms();
    const down = vms.find((v) => v.status === 'down');
    if (!down) throw new Error('the seeded simulator has no VM that is down');
    await admin.startVm(down.id, { pause: true });
    const paused = await admin.waitForVmStatus(down.id, ['paused'], { timeoutMs: 60_000, intervalMs: 250 });
    expect(paused.status).toBe('paused');
    await admin.stopVm(down.id);
    const stopped = await admin.waitForVmStatus(down.id, ['down'], { timeoutMs: 60_000, intervalMs: 250 });
    expect(stopped.status).toBe('down');
  });

  test('waitForVmStatus gives up with ENGINE_TIMEOUT naming the last status', async () => {
    const id = sim.vmIds()[0] ?? '';
    const current = await admin.getVm(id);
    const other = current.status === 'suspended' ? 'image_locked' : 'suspended';
    const err = await failure(admin.waitForVmStatus(id, [other], { timeoutMs: 600, intervalMs: 100 }));
    expect(err.code).toBe('ENGINE_TIMEOUT');
    expect(err.message).toContain(`last status: ${current.status}`);
  });

  test('events posted with our origin appear in the engine event log', async () => {
    const id = sim.vmIds()[0] ?? '';
    const ev = await admin.addEvent({ description: 'Backup of test VM finished', severity: 'normal', vmId: id });
    const ev2 = await admin.addEvent({ description: 'Backup of test VM finished again', severity: 'warning', vmId: id });
    expect(ev.customId).not.toBe(ev2.customId);
    const stored = sim.events().filter((e) => e.origin === 'olvm-backup');
    expect(stored.map((e) => e.description)).toEqual(expect.arrayContaining(['Backup of test VM finished', 'Backup of test VM finished again']));
    expect(stored.find((e) => e.description === 'Backup of test VM finished')).toMatchObject({ vmId: id, customId: ev.customId });
    const listed = await admin.listEvents({ max: 50 });
    expect(listed.map((e) => e.id)).toContain(ev.id);
  });

  test('VMs selected by an engine tag', async () => {
    const daily = await admin.findVmsByTag('daily');
    expect(daily.map((v) => v.name).sort()).toEqual(['db01', 'web01']);
    const web = await admin.getVm(sim.vmByName('web01').id, { withTags: true });
    expect(web.tags?.map((t) => t.name)).toEqual(['daily']);
  });

  test('tags: create, assign, find VMs by tag, list, unassign', async () => {
    const id = sim.vmIds()[0] ?? '';
    const name = `daily-${Date.now()}`;
    const tag = await admin.addTag({ name, description: 'nightly policy' });
    expect(tag).toMatchObject({ name, description: 'nightly policy' });
    expect((await admin.findTagByName(name))?.id).toBe(tag.id);
    await admin.assignTag(id, { name });
    expect((await admin.listVmTags(id)).map((t) => t.id)).toContain(tag.id);
    expect((await admin.findVmsByTag(name)).map((v) => v.id)).toEqual([id]);
    await admin.unassignTag(id, tag.id);
    expect((await admin.findVmsByTag(name)).map((v) => v.id)).toEqual([]);
  });
});
