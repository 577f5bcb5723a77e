import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { XMLParser } from 'fast-xml-parser';
import { QmpClient } from '../../backend/src/qmp';
import { EngineSim } from '../engine-sim';
import { requireTools } from '../helpers/tools';
import { until as waitUntil } from '../helpers/until';

// The engine simulator against raw HTTP (no engine client): what a real engine would answer,
// per reference/ovirt-api.md. Its VMs are real QEMU processes.

const MiB = 1024 * 1024;
 
type Json = Record<string, any>;

describe('engine simulator', () => {
  let dir: string;
  let sim: EngineSim;
  let api: string;
  let adminToken: string;

  async function login(user: string, password: string, scope = 'ovirt-app-api', accept = 'application/json'): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${sim.baseUrl}/sso/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: accept },
      body: new URLSearchParams({ grant_type: 'password', scope, username: user, password }).toString(),
    });
    return { status: res.status, body: (await res.json()) as Json };
  }

  async function call(method: string, p: string, o: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Json; text: string; headers: Headers }> {
    const headers: Record<string, string> = { Accept: 'application/json', ...o.headers };
    const token = o.token ?? adminToken;
    if (token) headers['Authorization'] = `Bearer ${token}`;
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${api}${p}`, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
    const text = await res.text();
    let body: Json = {};
    try {
      body = text ? (JSON.parse(text) as Json) : {};
    } catch {
      body = {};
    }
    return { status: res.status, body, text, headers: res.headers };
  }

  const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> => waitUntil(what, fn, timeoutMs);

  beforeAll(async () => {
    requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'qemu-nbd');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'esim-'));
    sim = await EngineSim.start({ dataDir: dir });
    api = `${sim.baseUrl}/api`;
    const r = await login(sim.users.admin.name, sim.users.admin.password);
    adminToken = r.body['access_token'] as string;
  });

  afterAll(async () => {
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  test('sso: password grant, both error shapes, strict Accept, 401 without or with a dead token', async () => {
    const ok = await login(sim.users.admin.name, sim.users.admin.password);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ access_token: expect.any(String), token_type: 'bearer', scope: expect.stringContaining('ovirt-app-api'), exp: expect.stringMatching(/^\d+$/) });

    const apiScope = await login(sim.users.admin.name, 'wrong');
    expect(apiScope.status).toBe(400);
    expect(apiScope.body).toEqual({ error_code: 'access_denied', error: expect.stringContaining("Cannot authenticate user 'admin@internal'") });
    const oauthScope = await login(sim.users.admin.name, 'wrong', 'openid');
    expect(oauthScope.status).toBe(400);
    expect(oauthScope.body).toEqual({ error: 'access_denied', error_description: expect.stringContaining('Cannot authenticate') });
    const badAccept = await login(sim.users.admin.name, sim.users.admin.password, 'ovirt-app-api', 'application/json, text/plain');
    expect(badAccept.body).toEqual({ error_code: 'invalid_request', error: "Missing parameter: 'Accept Header'" });

    const none = await fetch(`${api}/vms`, { headers: { Accept: 'application/json' } });
    expect(none.status).toBe(401);
    expect((await call('GET', '/vms', { token: 'bogus' })).status).toBe(401);

    sim.expireTokens(sim.users.plain.name);
    const plain = await login(sim.users.plain.name, sim.users.plain.password);
    const t = plain.body['access_token'] as string;
    expect((await call('GET', '/vms', { token: t })).status).toBe(200);
    sim.expireTokens(sim.users.plain.name);
    expect((await call('GET', '/vms', { token: t })).status).toBe(401);
    expect((await call('GET', '/vms')).status).toBe(200); // the admin's token lives on
  });

  test('GET /api names the authenticated user', async () => {
    const r = await call('GET', '');
    expect(r.status).toBe(200);
    expect(r.body['product_info']).toMatchObject({ name: 'oVirt Engine', version: { major: '4', minor: expect.any(String) } });
    expect(typeof r.body['time']).toBe('number');
    const au = r.body['authenticated_user'] as Json;
    expect(au['href']).toBe(`/ovirt-engine/api/users/${au['id']}`);
    const u = await call('GET', `/users/${au['id']}`);
    expect(u.body['principal']).toBe('admin');
    // system roles: id and name only, under the user (PermissionMapper, Permission → Role): his
    // SuperUser and Everyone's UserProfileEditor (GetPermissionsByAdElementIdAndGroupIds)
    const roles = await call('GET', `/users/${au['id']}/roles`);
    const superUser = (roles.body['role'] as Json[]).find((x) => x['name'] === 'SuperUser');
    expect(superUser).toEqual({
      href: `/ovirt-engine/api/users/${au['id']}/roles/00000000-0000-0000-0000-000000000001`,
      id: '00000000-0000-0000-0000-000000000001',
      name: 'SuperUser',
      link: [{ href: `/ovirt-engine/api/users/${au['id']}/roles/00000000-0000-0000-0000-000000000001/permits`, rel: 'permits' }],
      user: { href: `/ovirt-engine/api/users/${au['id']}`, id: au['id'] },
    });
    expect((roles.body['role'] as Json[]).map((x) => String(x['name'])).sort()).toEqual(['SuperUser', 'UserProfileEditor']);
    // any id gets Everyone's system roles: the query does not look the user up
    const dead = await call('GET', '/users/00000000-0000-0000-0000-00000000dead/roles');
    expect((dead.body['role'] as Json[]).map((x) => String(x['name']))).toEqual(['UserProfileEditor']);
    const plainToken = String((await login(sim.users.plain.name, sim.users.plain.password)).body['access_token']);
    const plainId = String(((await call('GET', '', { token: plainToken })).body['authenticated_user'] as Json)['id']);
    const namesOf = async (id: string): Promise<string[]> => (((await call('GET', `/users/${id}/roles`, { token: plainToken })).body['role'] as Json[] | undefined) ?? []).map((x) => String(x['name']));
    // user1's UserRole is on web01, not on the system object
    expect(await namesOf(plainId)).toEqual(['UserProfileEditor']);
    // filtered, a user reads only his own system roles
    expect(await namesOf(String(au['id']))).toEqual([]);
    expect(r.body['summary']['vms']).toEqual({ active: '1', total: '3' });
    const hosts = await call('GET', '/hosts');
    const hwId = (hosts.body['host'] as Json[])[0]?.['hardware_information']['uuid'] as string;
    const found = await call('GET', `/hosts?search=${encodeURIComponent(`hw_id=${hwId} and datacenter=Default and status=Up`)}`);
    expect((found.body['host'] as Json[]).map((h) => String(h['address']))).toEqual(['127.0.0.1']);
    expect((await call('GET', '/v4/clusters')).body['cluster']).toHaveLength(1);
  });

  test('vm list: wrapped, numbers and booleans as strings, dates as numbers, empty lists missing', async () => {
    const r = await call('GET', `/vms?search=${encodeURIComponent('name=web01')}&follow=disk_attachments.disk,nics`);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(['vm']);
    const vm = (r.body['vm'] as Json[])[0] as Json;
    expect(vm).toMatchObject({ name: 'web01', status: 'up', memory: expect.stringMatching(/^\d+$/), stateless: 'false', host: { id: expect.any(String) } });
    expect(typeof vm['creation_time']).toBe('number');
    const atts = vm['disk_attachments']['disk_attachment'] as Json[];
    expect(atts).toHaveLength(2);
    expect(atts[0]).toMatchObject({ bootable: 'true', interface: 'virtio', active: 'true', disk: { format: 'cow', backup: 'incremental', provisioned_size: String(64 * MiB), qcow_version: 'qcow2_v3' } });
    expect(vm['nics']['nic'][0]).toMatchObject({ name: 'nic1', mac: { address: expect.stringMatching(/^56:6f/) }, linked: 'true' });

    expect((await call('GET', `/vms?search=${encodeURIComponent('name=nope')}`)).body).toEqual({});
    const app01 = sim.vmByName('app01');
    expect((await call('GET', `/vms/${app01.id}/tags`)).body).toEqual({});
    const daily = await call('GET', `/vms?search=${encodeURIComponent('tag=daily and status=down')}`);
    expect((daily.body['vm'] as Json[]).map((v) => String(v['name']))).toEqual(['db01']);
    const unknown = await call('GET', '/vms/00000000-1111-2222-3333-444444444444');
    expect(unknown.status).toBe(404);
  });

  test('all_content=true carries an OVF that parses and names the disks', async () => {
    const db = sim.vmByName('db01');
    const r = await call('GET', `/vms/${db.id}?all_content=true`);
    const conf = r.body['initialization']['configuration'] as Json;
    expect(conf['type']).toBe('ovf');
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(conf['data'] as string) as Json;
    const env = doc['ovf:Envelope'] as Json;
    const diskSection = (env['Section'] as Json[]).find((s) => String(s['@xsi:type']).includes('DiskSection')) as Json;
    const disks = diskSection['Disk'] as Json[];
    expect(disks.map((d) => String(d['@ovf:fileRef']).split('/')[0])).toEqual(db.disks.map((d) => d.id));
    expect(disks.map((d) => String(d['@ovf:disk-alias']))).toEqual(['db01_Disk1', 'db01_Disk2']);
    expect(env['Content']['Name']).toBe('db01');
    expect((await call('GET', `/vms/${db.id}`)).body['initialization']).toBeUndefined();
  });

  test('Filter: true: the plain user sees his VM only; a foreign one is a 404', async () => {
    const t = (await login(sim.users.plain.name, sim.users.plain.password)).body['access_token'] as string;
    const list = await call('GET', '/vms', { token: t, headers: { Filter: 'true' } });
    expect((list.body['vm'] as Json[]).map((v) => String(v['name']))).toEqual(['web01']);
    expect((list.body['vm'] as Json[])[0]?.['host']).toBeUndefined(); // filtered views hide the host
    const db = sim.vmByName('db01');
    const foreign = await call('GET', `/vms/${db.id}`, { token: t, headers: { Filter: 'true' } });
    expect(foreign.status).toBe(404);
    const start = await call('POST', `/vms/${db.id}/start`, { token: t, headers: { Filter: 'true' }, body: {} });
    expect(start.status).toBe(403);
    const me = await call('GET', '', { token: t, headers: { Filter: 'true' } });
    expect(me.body['summary']).toBeUndefined();
    // filtered, only USER-type roles show VMs: the admin's SuperUser (ADMIN) shows none
    const all = await call('GET', '/vms', { headers: { Filter: 'true' } });
    expect(all.body).toEqual({});
    expect((await call('GET', '/vms')).body['vm']).toHaveLength(3);
  });

  test('start pause=true runs QEMU with a live QMP socket; stop quits it', async () => {
    const db = sim.vmByName('db01');
    const r = await call('POST', `/vms/${db.id}/start`, { body: { pause: 'true' } });
    expect(r.status).toBe(200);
    expect(r.body['status']).toBe('complete');
    expect((await call('GET', `/vms/${db.id}`)).body['status']).toBe('paused');
    const sock = path.join(sim.qmpDir, `${db.id}.qmp`);
    const qmp = await QmpClient.connectUnix(sock);
    try {
      const st = await qmp.execute('query-status', {});
      expect(st.running).toBe(false);
      const blocks = await qmp.execute('query-block', {});
      expect(blocks.map((b) => b.qdev)).toEqual(expect.arrayContaining(db.disks.map((d): unknown => expect.stringContaining(d.deviceId))));
    } finally {
      await qmp.close();
    }
    const again = await call('POST', `/vms/${db.id}/start`, { body: { pause: 'true' } });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ reason: 'Operation Failed', detail: '[Cannot run VM. VM is running.]' });
    const stop = await call('POST', `/vms/${db.id}/stop`, { body: {} });
    expect(stop.status).toBe(200);
    expect((await call('GET', `/vms/${db.id}`)).body['status']).toBe('down');
    await expect(QmpClient.connectUnix(sock, { timeoutMs: 2000 })).rejects.toThrow();
  });

  test('guest writes change what diskBytes reads', async () => {
    const web = sim.vmByName('web01');
    const disk = web.disks[0];
    if (!disk) throw new Error('web01 has no disk');
    const data = randomBytes(256 * 1024);
    await sim.guestWrite(web.id, disk.id, 5 * MiB, data);
    const bytes = await sim.diskBytes(web.id, disk.id);
    expect(bytes.length).toBe(64 * MiB);
    expect(bytes.subarray(5 * MiB, 5 * MiB + data.length).equals(data)).toBe(true);
    await expect(sim.guestWrite(sim.vmByName('app01').id, sim.vmByName('app01').disks[0]?.id ?? '', 0, data)).rejects.toThrow(/not running/);
  });

  test('POST /events stores; duplicate custom_id and missing fields are faults', async () => {
    const web = sim.vmByName('web01');
    const ev = { description: 'Backup of web01 finished', severity: 'normal', origin: 'olvm-backup', custom_id: '170000001', vm: { id: web.id } };
    const r = await call('POST', '/events', { body: ev });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ description: ev.description, origin: 'olvm-backup', custom_id: '170000001', severity: 'normal', vm: { id: web.id } });
    expect(sim.events().some((e) => e.customId === 170000001 && e.origin === 'olvm-backup')).toBe(true);
    const dup = await call('POST', '/events', { body: ev });
    expect(dup.status).toBe(400);
    expect(dup.body['reason']).toBe('Operation Failed');
    const missing = await call('POST', '/events', { body: { description: 'x' } });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ reason: 'Incomplete parameters', detail: 'Event [severity, origin, customId] required for add' });
    const listed = await call('GET', `/events?search=${encodeURIComponent('origin=olvm-backup')}`);
    expect((listed.body['event'] as Json[])[0]?.['description']).toBe(ev.description);
  });

  test('failNext answers a fault with the status; hangNext never answers', async () => {
    sim.failNext({ method: 'GET', pathPrefix: '/vms', status: 503 });
    const r = await call('GET', '/vms');
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ reason: 'Operation Failed', detail: expect.any(String) });
    expect((await call('GET', '/vms')).status).toBe(200);

    sim.hangNext({ method: 'GET', pathPrefix: '/ovirt-engine/api/hosts' });
    const hung = fetch(`${api}/hosts`, { headers: { Authorization: `Bearer ${adminToken}` }, signal: AbortSignal.timeout(300) });
    await expect(hung).rejects.toThrow();
    expect((await call('GET', '/hosts')).status).toBe(200);
  });

  test('image transfer round trip: upload, read back, extents, finalize; download', async () => {
    const sd = ((await call('GET', '/storagedomains')).body['storage_domain'] as Json[])[0] as Json;
    // (Node's fetch refuses an `Expect` header, so no `Expect: 201-created`: 202, then poll)
    const created = await call('POST', '/disks', {
      body: { alias: 'restored_Disk1', provisioned_size: String(16 * MiB), format: 'cow', sparse: 'true', backup: 'incremental', storage_domains: { storage_domain: [{ id: sd['id'] }] } },
    });
    expect(created.status).toBe(202);
    expect(created.body['status']).toBe('locked');
    expect(created.headers.get('location')).toBe(`${api}/disks/${created.body['id'] as string}`);
    const diskId = created.body['id'] as string;
    await until('disk ok', async () => ((await call('GET', `/disks/${diskId}`)).body['status'] === 'ok' ? true : undefined));

    const tr = await call('POST', '/imagetransfers', { body: { disk: { id: diskId }, direction: 'upload', format: 'raw' } });
    expect(tr.status).toBe(201);
    expect(tr.body['phase']).toBe('initializing');
    expect(tr.body['transfer_url']).toBeUndefined();
    const tid = tr.body['id'] as string;
    const live = await until('transferring', async () => {
      const t = await call('GET', `/imagetransfers/${tid}`);
      return t.body['phase'] === 'transferring' ? t.body : undefined;
    });
    expect((await call('GET', `/disks/${diskId}`)).body['status']).toBe('locked');
    const url = live['transfer_url'] as string;
    expect(live['proxy_url']).toMatch(/\/images\//);

    const opt = await fetch(url, { method: 'OPTIONS' });
    expect(opt.headers.get('allow')).toBe('OPTIONS,GET,PUT,PATCH');
    expect(await opt.json()).toMatchObject({ features: expect.arrayContaining(['extents', 'zero', 'flush']), max_writers: 8 });

    const data = randomBytes(3 * MiB);
    const put = await fetch(`${url}?flush=n`, { method: 'PUT', headers: { 'Content-Range': `bytes ${MiB}-${4 * MiB - 1}/*`, 'Content-Length': String(data.length) }, body: data });
    expect(put.status).toBe(200);
    const zero = await fetch(url, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ op: 'zero', offset: 2 * MiB, size: 64 * 1024 }) });
    expect(zero.status).toBe(200);
    expect((await fetch(url, { method: 'PATCH', body: JSON.stringify({ op: 'flush' }) })).status).toBe(200);
    const expected = Buffer.from(data);
    expected.fill(0, MiB, MiB + 64 * 1024);

    const get = await fetch(url, { headers: { Range: `bytes=${MiB}-${4 * MiB - 1}` } });
    expect(get.status).toBe(206);
    expect(get.headers.get('content-range')).toBe(`bytes ${MiB}-${4 * MiB - 1}/${16 * MiB}`);
    expect(Buffer.from(await get.arrayBuffer()).equals(expected)).toBe(true);
    const beyond = await fetch(url, { headers: { Range: `bytes=${16 * MiB}-${17 * MiB}` } });
    expect(beyond.status).toBe(416);

    const extents = (await (await fetch(`${url}/extents`)).json()) as Json[];
    expect(extents[0]).toMatchObject({ start: 0, zero: true });
    const total = extents.reduce((n, e) => n + (e['length'] as number), 0);
    expect(total).toBe(16 * MiB);
    expect(extents.some((e) => e['zero'] === false && (e['start'] as number) <= MiB)).toBe(true);
    expect((await fetch(`${url}/extents?context=dirty`)).status).toBe(404);

    const fin = await call('POST', `/imagetransfers/${tid}/finalize`, { body: {} });
    expect(fin.status).toBe(200);
    await until('finished_success', async () => ((await call('GET', `/imagetransfers/${tid}`)).body['phase'] === 'finished_success' ? true : undefined));
    expect((await call('GET', `/disks/${diskId}`)).body['status']).toBe('ok');
    expect((await fetch(url, { method: 'OPTIONS' })).status).toBe(403);

    // the disk is a real qcow2 now holding the data
    const content = await sim.diskBytes('', diskId);
    expect(content.subarray(MiB, 4 * MiB).equals(expected)).toBe(true);

    // download it again through a read-only ticket
    const dl = await call('POST', '/imagetransfers', { body: { disk: { id: diskId }, direction: 'download', format: 'raw' } });
    const dlLive = await until('download transferring', async () => {
      const t = await call('GET', `/imagetransfers/${dl.body['id'] as string}`);
      return t.body['phase'] === 'transferring' ? t.body : undefined;
    });
    const dlUrl = dlLive['proxy_url'] as string;
    expect((await fetch(dlUrl, { method: 'OPTIONS' })).headers.get('allow')).toBe('OPTIONS,GET');
    const whole = await fetch(dlUrl);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(content)).toBe(true);
    expect((await fetch(dlUrl, { method: 'PUT', headers: { 'Content-Length': '1' }, body: 'x' })).status).toBe(403);
    await call('POST', `/imagetransfers/${dl.body['id'] as string}/finalize`, { body: {} });
  });

  test('a transfer of a running VM disk is refused; POST /vms from an OVF makes a down VM', async () => {
    const web = sim.vmByName('web01');
    const refused = await call('POST', '/imagetransfers', { body: { disk: { id: web.disks[0]?.id }, direction: 'download', format: 'raw' } });
    expect(refused.status).toBe(409);

    const app = sim.vmByName('app01');
    const ovf = (await call('GET', `/vms/${app.id}?all_content=true`)).body['initialization']['configuration']['data'] as string;
    const cluster = ((await call('GET', '/clusters')).body['cluster'] as Json[])[0] as Json;
    const made = await call('POST', '/vms', { body: { name: 'app01-restored', cluster: { id: cluster['id'] }, initialization: { regenerate_ids: 'true', configuration: { type: 'ovf', data: ovf } } } });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'app01-restored', status: 'down' });
    expect(made.body['id']).not.toBe(app.id);
    // the OVF's disk still belongs to app01: the import attaches nothing and says so in an event
    expect((await call('GET', `/vms/${made.body['id'] as string}/diskattachments`)).body).toEqual({});
    expect(sim.events().some((e) => e.vmId === made.body['id'] && e.severity === 'warning')).toBe(true);
  });

  test('XML in, XML out; a VM whose QEMU dies goes down with an error event', async () => {
    const vm = await sim.addVm({ name: 'crash01', disks: [{ sizeBytes: 16 * MiB, format: 'raw' }] });
    const start = await fetch(`${api}/vms/${vm.id}/start`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/xml', Accept: 'application/xml' },
      body: '<action><pause>true</pause></action>',
    });
    expect(start.status).toBe(200);
    expect(await start.text()).toMatch(/<action>.*<status>complete<\/status>.*<\/action>/s);
    const xml = await (await fetch(`${api}/vms/${vm.id}`, { headers: { Authorization: `Bearer ${adminToken}` } })).text();
    expect(xml).toContain(`<vm href="/ovirt-engine/api/vms/${vm.id}" id="${vm.id}">`);
    expect(xml).toContain('<status>paused</status>');
    await sim.crashVm(vm.id);
    await until('down after the crash', async () => ((await call('GET', `/vms/${vm.id}`)).body['status'] === 'down' ? true : undefined));
    expect(sim.events().some((e) => e.vmId === vm.id && e.severity === 'error' && /down with error/.test(e.description))).toBe(true);
  });

  test('tls: https with the engine CA, served by pki-resource', async () => {
    const tdir = await fs.mkdtemp(path.join(os.tmpdir(), 'esim-tls-'));
    const tsim = await EngineSim.start({ dataDir: tdir, tls: true, seed: false });
    try {
      expect(tsim.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ovirt-engine$/);
      const ca = await fs.readFile(tsim.caFile ?? '', 'utf8');
      const get = (p: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          https
            .get(`${tsim.baseUrl}${p}`, { ca }, (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            })
            .on('error', reject);
        });
      const pem = await get('/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA');
      expect(pem.status).toBe(200);
      expect(pem.body).toBe(ca);
      expect((await get('/api')).status).toBe(401);
    } finally {
      await tsim.close();
      await fs.rm(tdir, { recursive: true, force: true });
    }
  });
});
