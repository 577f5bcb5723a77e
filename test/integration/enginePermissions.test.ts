import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineClient, EVERYONE_GROUP_ID, permitsOf, principalIds, type PermitObject } from '../../backend/src/engine';
import { EngineSim, type SimUserKey } from '../engine-sim';
import { ssoToken } from '../helpers/serviceProcess';
import { requireTools } from '../helpers/tools';

// The engine's permission model as the simulator answers it (reference ovirt-permissions.md) and
// as the engine client reads it: per seeded user, the permits the product's authorization table
// needs, computed the VM Portal's way (the user's own filtered view) and the service account's
// way (unfiltered), which must agree; the REST shapes; run-time grants and groups.

type Json = Record<string, any>;

const UPE_ON_SYSTEM = '58ca605c-010d-0307-0224-0000000001a9'; // Everyone's UserProfileEditor (data/00600)

describe('engine permissions', () => {
  let dir: string;
  let sim: EngineSim;
  let admin: EngineClient;
  const tokens = new Map<SimUserKey, string>();
  const clients: EngineClient[] = [];

  const token = async (who: SimUserKey): Promise<string> => {
    const known = tokens.get(who);
    if (known) return known;
    const t = await ssoToken(sim, who);
    tokens.set(who, t);
    return t;
  };
  /** The engine as the portal user sees it: his token, `Filter: true`. */
  const as = async (who: SimUserKey): Promise<EngineClient> => {
    const c = new EngineClient({ baseUrl: sim.baseUrl, auth: { kind: 'bearer', token: await token(who) } });
    clients.push(c);
    return c;
  };
  const call = async (who: SimUserKey, method: string, p: string, body?: unknown, accept = 'application/json'): Promise<{ status: number; body: Json; text: string }> => {
    const res = await fetch(`${sim.baseUrl}/api${p}`, {
      method,
      headers: { Accept: accept, Authorization: `Bearer ${await token(who)}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: Json = {};
    try {
      parsed = text && accept.includes('json') ? (JSON.parse(text) as Json) : {};
    } catch {
      parsed = {};
    }
    return { status: res.status, body: parsed, text };
  };

  /** The user's permits on an object, from his own filtered view and from the service account's. */
  const permits = async (who: SimUserKey, obj: PermitObject): Promise<Set<string>> => {
    const c = await as(who);
    const userId = sim.userId(sim.users[who].name);
    const own = permitsOf(await c.listPermissions(obj), principalIds(userId, (await c.listUserGroups(userId)).map((g) => g.id)));
    const seen = permitsOf(await admin.listPermissions(obj), principalIds(userId, (await admin.listUserGroups(userId)).map((g) => g.id)));
    expect([...own].sort()).toEqual([...seen].sort());
    return own;
  };

  beforeAll(async () => {
    requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-nbd');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'eperm-'));
    sim = await EngineSim.start({ dataDir: dir });
    admin = new EngineClient({ baseUrl: sim.baseUrl, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await admin?.close();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  test('each seeded user sees the VMs the table says, and holds the permits of his row, both ways', async () => {
    const web = sim.vmByName('web01');
    const db = sim.vmByName('db01');
    const inv = sim.inventory();
    const sd = (name: string): PermitObject => ({ kind: 'storagedomain', id: inv.storageDomains.find((s) => s.name === name)?.id ?? '' });
    const [data1, data2] = [sd('data1'), sd('data2')];
    const names = async (who: SimUserKey): Promise<string[]> => (await (await as(who)).listVms()).map((v) => v.name).sort();
    expect(await names('plain')).toEqual(['web01']);
    expect(await names('viewer')).toEqual(['app01', 'db01', 'web01']);
    expect(await names('operator')).toEqual(['web01']);
    expect(await names('creator')).toEqual(['web01']);
    expect(await names('diskop')).toEqual(['web01']);
    expect(await names('grpop')).toEqual(['db01']);
    expect(await names('backupadmin')).toEqual(['app01', 'db01', 'web01']);
    // ADMIN roles show nothing to a filtered query
    expect(await names('roadmin')).toEqual([]);
    expect(await names('admin')).toEqual([]);

    const vm = (v: { id: string }): PermitObject => ({ kind: 'vm', id: v.id });
    const disk = (d: { id: string } | undefined): PermitObject => ({ kind: 'disk', id: d?.id ?? '' });
    const cluster: PermitObject = { kind: 'cluster', id: inv.clusterId };
    const has = async (who: SimUserKey, permit: string, obj: PermitObject): Promise<boolean> => (await permits(who, obj)).has(permit);

    // see points: visibility only; viewer holds no backup permit anywhere
    expect(await has('viewer', 'backup_disk', vm(web))).toBe(false);
    expect(await has('viewer', 'login', vm(web))).toBe(true);
    // backup now / verify: backup_disk on the VM
    expect(await has('operator', 'backup_disk', vm(web))).toBe(true);
    expect(await has('operator', 'backup_disk', vm(db))).toBe(false);
    expect(await has('plain', 'backup_disk', vm(web))).toBe(false);
    expect(await has('admin', 'backup_disk', vm(db))).toBe(true);
    // download / browse: backup_disk on the VM and edit_disk_properties on the disk
    expect(await has('operator', 'edit_disk_properties', disk(web.disks[0]))).toBe(true);
    expect(await has('diskop', 'edit_disk_properties', disk(web.disks[0]))).toBe(true);
    expect(await has('diskop', 'backup_disk', disk(web.disks[1]))).toBe(true);
    expect(await has('diskop', 'backup_disk', vm(web))).toBe(false);
    expect(await has('creator', 'edit_disk_properties', disk(web.disks[0]))).toBe(false);
    // restore as a new VM: create_vm on the cluster, create_disk on each target domain
    expect(await has('creator', 'create_vm', cluster)).toBe(true);
    expect(await has('creator', 'create_disk', data1)).toBe(true);
    expect(await has('creator', 'create_disk', data2)).toBe(true);
    expect(await has('creator', 'backup_disk', vm(web))).toBe(false);
    expect(await has('operator', 'create_vm', cluster)).toBe(false);
    // restore disks into a VM: configure_vm_storage there, create_disk on the domain, attach_disk
    expect(await has('operator', 'configure_vm_storage', vm(web))).toBe(true);
    expect(await has('operator', 'attach_disk', disk(web.disks[1]))).toBe(true);
    expect(await has('operator', 'create_disk', data1)).toBe(true);
    expect(await has('operator', 'create_disk', data2)).toBe(false);
    expect(await has('operator', 'configure_vm_storage', vm(db))).toBe(false);
    // groups count: grpop's backup_disk on db01 comes through backup-operators
    expect(await has('grpop', 'backup_disk', vm(db))).toBe(true);
    expect(await has('grpop', 'backup_disk', vm(web))).toBe(false);
    expect(await has('grpop', 'create_disk', data1)).toBe(false); // a domain does not inherit from a VM
    // ReadOnlyAdmin holds login only
    expect([...(await permits('roadmin', vm(web)))].sort()).toEqual(['edit_profile', 'login']);
  });

  test('engine admins and groups: who is an admin, whose groups are which', async () => {
    expect(await (await as('roadmin')).isEngineAdmin()).toBe(true);
    expect(await (await as('admin')).isEngineAdmin()).toBe(true);
    expect(await (await as('operator')).isEngineAdmin()).toBe(false);
    const grpop = sim.userId('grpop@internal');
    const groupIds = async (c: EngineClient, userId: string): Promise<string[]> => (await c.listUserGroups(userId)).map((g) => g.id);
    expect((await groupIds(await as('grpop'), grpop)).sort()).toEqual([sim.groupId('backup-operators'), EVERYONE_GROUP_ID].sort());
    expect(await admin.listUserGroups(sim.userId('backupadmin@internal'))).toEqual([
      { id: sim.groupId('olvm-backup-admins'), name: 'olvm-backup-admins' },
      { id: EVERYONE_GROUP_ID, name: 'Everyone' },
    ]);
    expect(await groupIds(admin, sim.userId('user1@internal'))).toEqual([EVERYONE_GROUP_ID]);
    // /users/{id}/groups names directory ids (hex), /groups engine ids with domain_entry_id
    const dirGroups = await call('grpop', 'GET', `/users/${grpop}/groups`);
    const groups = await call('grpop', 'GET', '/groups');
    const engineGroup = (groups.body['group'] as Json[]).find((g) => g['name'] === 'backup-operators') as Json;
    expect(engineGroup['id']).toBe(sim.groupId('backup-operators'));
    expect(dirGroups.body['group']).toEqual([expect.objectContaining({ id: engineGroup['domain_entry_id'], name: 'backup-operators', domain: expect.objectContaining({ name: 'internal-authz' }) })]);
    expect(engineGroup['domain_entry_id']).toMatch(/^[0-9A-F]+$/);
    // an engine that will not list its groups leaves Everyone only (fail closed)
    sim.failNext({ method: 'GET', pathPrefix: '/groups', status: 403 });
    expect(await groupIds(await as('grpop'), grpop)).toEqual([EVERYONE_GROUP_ID]);
  });

  test('a filtered list shows other users\' direct grants to a caller holding one there: only principal matching gives his permits', async () => {
    const web = sim.vmByName('web01');
    const diskop = await as('diskop');
    const entries = await diskop.listPermissions({ kind: 'vm', id: web.id });
    const operatorId = sim.userId('operator@internal');
    expect(entries).toContainEqual(expect.objectContaining({ roleName: 'UserVmManager', administrative: false, principal: { kind: 'user', id: operatorId } }));
    expect(new Set(entries.flatMap((e) => e.permits)).has('backup_disk')).toBe(true);
    const mine = permitsOf(entries, new Set([sim.userId('diskop@internal'), EVERYONE_GROUP_ID]));
    expect(mine.has('backup_disk')).toBe(false);
    expect(mine.has('run_vm')).toBe(true); // UserRole
    // a caller with no direct grant on the object gets only his inherited ones
    const viewerEntries = await (await as('viewer')).listPermissions({ kind: 'vm', id: web.id });
    expect(viewerEntries.map((e) => e.principal.id).sort()).toEqual([EVERYONE_GROUP_ID, sim.userId('viewer@internal')].sort());
  });

  test('inherited grants are rewritten onto the queried object; Everyone\'s UserProfileEditor is on everything', async () => {
    const web = sim.vmByName('web01');
    const inv = sim.inventory();
    const list = await call('viewer', 'GET', `/vms/${web.id}/permissions`);
    const viewerId = sim.userId('viewer@internal');
    const onCluster = (list.body['permission'] as Json[]).find((p) => p['user']?.['id'] === viewerId) as Json;
    expect(onCluster).toEqual({
      href: `/ovirt-engine/api/vms/${web.id}/permissions/${onCluster['id']}`,
      id: onCluster['id'],
      role: { href: '/ovirt-engine/api/roles/00000000-0000-0000-0001-000000000001', id: '00000000-0000-0000-0001-000000000001' },
      user: { href: `/ovirt-engine/api/users/${viewerId}`, id: viewerId },
      vm: { href: `/ovirt-engine/api/vms/${web.id}`, id: web.id },
    });
    // the permission itself says where it was granted
    const real = await call('viewer', 'GET', `/vms/${web.id}/permissions/${onCluster['id']}`);
    expect(real.body['cluster']).toEqual({ href: `/ovirt-engine/api/clusters/${inv.clusterId}`, id: inv.clusterId });
    expect(real.body['vm']).toBeUndefined();
    const objects = [`/vms/${web.id}`, `/disks/${web.disks[0]?.id}`, `/clusters/${inv.clusterId}`, `/datacenters/${inv.dataCenterId}`, `/storagedomains/${inv.storageDomains[0]?.id}`, '/templates/00000000-0000-0000-0000-000000000000', ''];
    for (const o of objects) {
      const r = await call('plain', 'GET', `${o}/permissions`);
      expect(r.status).toBe(200);
      const upe = (r.body['permission'] as Json[]).find((p) => p['id'] === UPE_ON_SYSTEM) as Json;
      expect(upe).toMatchObject({ role: { id: 'def00021-0000-0000-0000-def000000015' }, group: { id: EVERYONE_GROUP_ID } });
      expect(upe['href']).toBe(`/ovirt-engine/api/groups/${EVERYONE_GROUP_ID}/permissions/${UPE_ON_SYSTEM}`);
    }
    // entries come in permission id order, each once
    const ids = (list.body['permission'] as Json[]).map((p) => String(p['id']));
    expect(ids).toEqual([...new Set(ids)].sort());
    // unfiltered is for admins
    expect((await call('plain', 'GET', `/vms/${web.id}/permissions?filter=false`)).status).toBe(403);
  });

  test('roles: a non-admin gets the USER-type roles only; permits by id, name and type; XML too', async () => {
    const userRoles = await call('plain', 'GET', '/roles?follow=permits');
    const roles = userRoles.body['role'] as Json[];
    expect(roles.every((r) => r['administrative'] === 'false')).toBe(true);
    expect(roles.map((r) => String(r['name']))).toEqual(expect.arrayContaining(['UserRole', 'UserVmManager', 'DiskOperator', 'DiskCreator', 'PowerUserRole', 'VmCreator', 'UserProfileEditor']));
    expect(roles.map((r) => String(r['name']))).not.toContain('SuperUser');
    const uvm = roles.find((r) => r['name'] === 'UserVmManager') as Json;
    // backup_disk is an ADMIN permit inside a USER role (upgrade/04_03_0750)
    expect(uvm['permits']['permit']).toContainEqual({
      href: `/ovirt-engine/api/roles/${uvm['id']}/permits/1110`,
      id: '1110',
      name: 'backup_disk',
      administrative: 'true',
      role: { href: `/ovirt-engine/api/roles/${uvm['id']}`, id: uvm['id'] },
    });
    const adminRoles = ((await call('admin', 'GET', '/roles')).body['role'] as Json[]).map((r) => String(r['name']));
    expect(adminRoles).toEqual(expect.arrayContaining(['SuperUser', 'ReadOnlyAdmin', 'ClusterAdmin', 'DataCenterAdmin', 'StorageAdmin', 'UserRole']));
    expect(adminRoles).not.toContain('GlusterAdmin'); // a virt-only engine
    const userRole = await call('plain', 'GET', '/roles/00000000-0000-0000-0001-000000000001/permits');
    expect((userRole.body['permit'] as Json[]).map((p) => String(p['name'])).sort()).toEqual(['access_image_storage', 'change_vm_cd', 'connect_to_vm', 'hibernate_vm', 'login', 'reboot_vm', 'reset_vm', 'run_vm', 'shut_down_vm', 'stop_vm', 'vm_pool_basic_operations']);
    const web = sim.vmByName('web01');
    const xml = await call('operator', 'GET', `/vms/${web.id}/permissions?follow=role.permits`, undefined, 'application/xml');
    expect(xml.status).toBe(200);
    expect(xml.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8" standalone="yes"\?>\n<permissions><permission href="[^"]+" id="[^"]+">/);
    expect(xml.text).toMatch(/<role href="\/ovirt-engine\/api\/roles\/def00006-0000-0000-0000-def000000006" id="def00006-0000-0000-0000-def000000006"><name>UserVmManager<\/name>.*<administrative>false<\/administrative><mutable>false<\/mutable><permits>.*<permit href="\/ovirt-engine\/api\/roles\/def00006-0000-0000-0000-def000000006\/permits\/1110" id="1110"><name>backup_disk<\/name><administrative>true<\/administrative>/s);
    expect(xml.text).toContain(`<user href="/ovirt-engine/api/users/${sim.userId('operator@internal')}" id="${sim.userId('operator@internal')}"/><vm href="/ovirt-engine/api/vms/${web.id}" id="${web.id}"/>`);
  });

  test('grants and revocations at run time change the answers at once', async () => {
    const db = sim.vmByName('db01');
    const web = sim.vmByName('web01');
    const user1 = await as('plain');
    expect(await user1.getVm(db.id).catch((e: { code?: string }) => e.code)).toBe('ENGINE_NOT_FOUND');
    const id = sim.grant({ role: 'UserVmManager', to: 'user1@internal', on: { kind: 'vm', id: db.id } });
    try {
      expect((await user1.getVm(db.id)).name).toBe('db01');
      expect((await permits('plain', { kind: 'vm', id: db.id })).has('backup_disk')).toBe(true);
    } finally {
      expect(sim.revoke(id)).toBe(1);
    }
    expect((await permits('plain', { kind: 'vm', id: db.id })).has('backup_disk')).toBe(false);
    // the owner loses his rights, and the group its
    const ownerGrant = { role: 'UserVmManager', to: 'operator@internal', on: { kind: 'vm', id: web.id } } as const;
    const groupGrant = { role: 'UserVmManager', to: 'backup-operators', on: { kind: 'vm', id: db.id } } as const;
    expect(sim.revoke(ownerGrant)).toBe(1);
    expect(sim.revoke(groupGrant)).toBe(1);
    try {
      expect((await permits('operator', { kind: 'vm', id: web.id })).has('backup_disk')).toBe(false);
      expect((await permits('grpop', { kind: 'vm', id: db.id })).has('backup_disk')).toBe(false);
      expect(await (await as('grpop')).listVms()).toEqual([]);
    } finally {
      sim.grant(ownerGrant);
      sim.grant(groupGrant);
    }
    expect((await permits('grpop', { kind: 'vm', id: db.id })).has('backup_disk')).toBe(true);
  });

  test('commands check their permits: refusals are the engine\'s 403, creators become owners', async () => {
    const web = sim.vmByName('web01');
    const db = sim.vmByName('db01');
    const inv = sim.inventory();
    const [data1, data2] = inv.storageDomains;
    const refused = { reason: 'Operation Failed', detail: '[User is not authorized to perform this action.]' };
    // image transfers: edit_disk_properties on the disk first (then web01 running is a 409)
    expect((await call('plain', 'POST', '/imagetransfers', { disk: { id: web.disks[0]?.id }, direction: 'download', format: 'raw' })).body).toEqual(refused);
    expect((await call('operator', 'POST', '/imagetransfers', { disk: { id: web.disks[0]?.id }, direction: 'download', format: 'raw' })).status).toBe(409);
    expect((await call('operator', 'POST', '/imagetransfers', { disk: { id: db.disks[0]?.id }, direction: 'download', format: 'raw' })).status).toBe(403);
    // finalize needs create_disk on System
    expect((await call('operator', 'POST', '/imagetransfers/00000000-0000-0000-0000-0000000000aa/finalize', {})).status).toBe(403);
    // a new disk through a VM: configure_vm_storage on it and create_disk on the domain
    const newDisk = (sd: string): Json => ({ interface: 'virtio', active: 'false', disk: { alias: 'eperm', provisioned_size: String(1 << 20), format: 'raw', storage_domains: { storage_domain: [{ id: sd }] } } });
    expect((await call('operator', 'POST', `/vms/${db.id}/diskattachments`, newDisk(data1?.id ?? ''))).status).toBe(403);
    expect((await call('grpop', 'POST', `/vms/${db.id}/diskattachments`, newDisk(data1?.id ?? ''))).status).toBe(403);
    expect((await call('operator', 'POST', `/vms/${web.id}/diskattachments`, newDisk(data2?.id ?? ''))).status).toBe(403);
    const added = await call('operator', 'POST', `/vms/${web.id}/diskattachments`, newDisk(data1?.id ?? ''));
    expect(added.status).toBe(201);
    const addedId = String(added.body['id']);
    // AddDisk made him DiskOperator of it
    expect(sim.permissions()).toContainEqual(expect.objectContaining({ roleName: 'DiskOperator', principal: { kind: 'user', id: sim.userId('operator@internal') }, object: { kind: 'disk', id: addedId } }));
    expect((await call('operator', 'DELETE', `/vms/${web.id}/diskattachments/${addedId}?detach_only=false`)).status).toBe(200);
    expect(sim.permissions().some((p) => p.object.kind === 'disk' && p.object.id === addedId)).toBe(false);
    // a new VM: create_vm on the cluster; the creator gets UserVmManager on it, an admin does not
    const vmBody = { name: 'eperm01', cluster: { id: inv.clusterId }, template: { id: '00000000-0000-0000-0000-000000000000' } };
    expect((await call('operator', 'POST', '/vms', vmBody)).body).toEqual(refused);
    const made = await call('creator', 'POST', '/vms', vmBody);
    expect(made.status).toBe(201);
    const madeId = String(made.body['id']);
    expect((await permits('creator', { kind: 'vm', id: madeId })).has('backup_disk')).toBe(true);
    expect((await (await as('creator')).listVms()).map((v) => v.name).sort()).toEqual(['eperm01', 'web01']);
    // an OVF import also needs import_export_vm on System
    const ovf = { name: 'eperm02', cluster: { id: inv.clusterId }, initialization: { configuration: { type: 'ovf', data: '<ovf/>' } } };
    expect((await call('creator', 'POST', '/vms', ovf)).body).toEqual(refused);
    // deleting: delete_vm (UserVmManager has it; UserRole does not)
    expect((await call('plain', 'DELETE', `/vms/${web.id}`)).status).toBe(403);
    expect((await call('plain', 'DELETE', `/vms/${db.id}`)).status).toBe(404); // he cannot see it
    expect((await call('creator', 'DELETE', `/vms/${madeId}`)).status).toBe(200);
    expect(sim.permissions().some((p) => p.object.kind !== 'system' && 'id' in p.object && p.object.id === madeId)).toBe(false);
    // starting: run_vm
    expect((await call('operator', 'POST', `/vms/${db.id}/start`, {})).status).toBe(403);
  });

  test('a version 2 state.json: the admin flag becomes SuperUser on System, permitted users UserRole on the VM', async () => {
    const d = await fs.mkdtemp(path.join(os.tmpdir(), 'eperm-v2-'));
    try {
      const fresh = await EngineSim.start({ dataDir: d, seed: false });
      await fresh.close();
      const file = path.join(d, 'state.json');
      const v3 = JSON.parse(await fs.readFile(file, 'utf8')) as Json;
      const vmId = '11111111-2222-3333-4444-555555555555';
      const users = [
        { id: 'aaaaaaaa-0000-0000-0000-000000000001', name: 'admin', userName: 'admin@internal', password: 'pw-admin', admin: true },
        { id: 'aaaaaaaa-0000-0000-0000-000000000002', name: 'user1', userName: 'user1@internal', password: 'pw-user1', admin: false },
      ];
      const vm = { id: vmId, name: 'old01', description: '', comment: '', status: 'down', memory: 1 << 30, sockets: 1, osType: 'other', clusterId: v3['clusterId'], creationTime: 1, attachments: [], nics: [], tagIds: [], permittedUserIds: [users[1]?.id] };
      for (const key of ['groups', 'permissions', 'cpuProfileId']) delete v3[key];
      await fs.writeFile(file, JSON.stringify({ ...v3, version: 2, users, vms: [vm] }));
      const old = await EngineSim.start({ dataDir: d });
      try {
        expect(old.users.admin.password).toBe('pw-admin');
        expect(old.vmIds()).toEqual([vmId]);
        const perms = old.permissions();
        expect(perms).toContainEqual(expect.objectContaining({ roleName: 'SuperUser', principal: { kind: 'user', id: users[0]?.id }, object: { kind: 'system' } }));
        expect(perms).toContainEqual(expect.objectContaining({ roleName: 'UserRole', principal: { kind: 'user', id: users[1]?.id }, object: { kind: 'vm', id: vmId } }));
        expect(perms).toContainEqual(expect.objectContaining({ id: UPE_ON_SYSTEM, principal: { kind: 'group', id: EVERYONE_GROUP_ID } }));
        expect(old.users.viewer.password).not.toBe(''); // the new accounts are added
        const saved = JSON.parse(await fs.readFile(file, 'utf8')) as Json;
        expect(saved['version']).toBe(3);
        expect(saved['users'][0]['admin']).toBeUndefined();
        expect(saved['vms'][0]['permittedUserIds']).toBeUndefined();
      } finally {
        await old.close();
      }
    } finally {
      await fs.rm(d, { recursive: true, force: true });
    }
  });
});
