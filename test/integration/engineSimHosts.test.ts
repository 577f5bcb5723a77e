import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineClient } from '../../backend/src/engine';
import { EngineSim, type SimHost, type SimVm } from '../engine-sim';
import { requireTools } from '../helpers/tools';

// The engine simulator with several hosts in its one cluster, read through the product's engine
// client as the service account: where VMs are placed, what the API says about it, and that an
// engine restart puts running VMs back where they ran. Its VMs are real QEMU processes.

const MiB = 1024 * 1024;
 
type Json = Record<string, any>;

describe('engine simulator: several hosts', () => {
  let dir: string;
  let sim: EngineSim;
  let admin: EngineClient;
  let hosts: SimHost[];

  const adminClient = (s: EngineSim): EngineClient =>
    new EngineClient({ baseUrl: s.baseUrl, auth: { kind: 'password', user: s.users.admin.name, password: s.users.admin.password } });
  /** the simulator (and an admin client of it) the tests talk to from now on */
  const use = (s: EngineSim): void => {
    sim = s;
    admin = adminClient(s);
  };
  const raw = async (p: string, query?: Record<string, string>): Promise<Json> => (await admin.connection.request({ method: 'GET', path: p, query })) as Json;
  const hostNamed = (name: string): SimHost => {
    const h = hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  };
  /** running VMs per host name, as the simulator records them */
  const load = (): Record<string, number> => {
    const out: Record<string, number> = Object.fromEntries(hosts.map((h) => [h.name, 0]));
    for (const id of sim.vmIds()) {
      const v = sim.vmById(id);
      if (v.hostName) out[v.hostName] = (out[v.hostName] ?? 0) + 1;
    }
    return out;
  };
  const tiny = (name: string, extra: { running?: boolean; host?: string } = {}): ReturnType<EngineSim['addVm']> =>
    sim.addVm({ name, disks: [{ sizeBytes: 4 * MiB, format: 'raw' }], ...extra });

  beforeAll(async () => {
    requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'qemu-nbd');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'esim-hosts-'));
    use(await EngineSim.start({ dataDir: dir, hosts: 3, seed: false }));
    hosts = sim.hostIds();
  });

  afterAll(async () => {
    await admin?.close().catch(() => undefined);
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  test('GET /hosts lists three hosts of the one cluster, all up at 127.0.0.1, each its own ids', async () => {
    expect(hosts.map((h) => h.name)).toEqual(['sim-host', 'sim-host2', 'sim-host3']);
    const listed = await admin.listHosts();
    expect(listed.map((h) => ({ id: h.id, name: h.name }))).toEqual(hosts);
    expect(new Set(listed.map((h) => h.id)).size).toBe(3);
    const clusters = await admin.listClusters();
    expect(clusters).toHaveLength(1);
    for (const h of listed) expect(h).toMatchObject({ address: '127.0.0.1', status: 'up', clusterId: clusters[0]?.id });

    const body = await raw('/hosts');
    const hwIds = (body['host'] as Json[]).map((h) => h['hardware_information']['uuid'] as string);
    expect(new Set(hwIds).size).toBe(3);
    // the SDK's way of finding "this host": hw_id=<vdsm.id> and status=Up
    const second = await admin.listHosts({ search: `hw_id=${hwIds[1] ?? ''} and status=up` });
    expect(second.map((h) => h.name)).toEqual(['sim-host2']);
    expect((await raw(''))['summary']['hosts']).toEqual({ active: '3', total: '3' });
  });

  test('six VMs started: two per host, and the engine says where each runs', async () => {
    const vms: SimVm[] = [];
    for (let i = 0; i < 6; i++) vms.push(await tiny(`spread${i}`, { running: true }));
    expect(load()).toEqual({ 'sim-host': 2, 'sim-host2': 2, 'sim-host3': 2 });
    // fewest running VMs, ties to the first host: round robin while they all start up
    expect(vms.map((v) => v.hostName)).toEqual(['sim-host', 'sim-host2', 'sim-host3', 'sim-host', 'sim-host2', 'sim-host3']);
    for (const v of vms) {
      const seen = await admin.getVm(v.id);
      expect(seen.status).toBe('up');
      expect(seen.hostId).toBe(sim.vmById(v.id).hostId);
      expect(seen.hostId).toBe(hostNamed(v.hostName ?? '').id);
    }
    for (const h of hosts) {
      expect((await raw(`/hosts/${h.id}`))['summary']).toMatchObject({ active: '2', total: '2' });
      expect((await admin.findVms(`host=${h.name}`)).map((v) => v.id).sort()).toEqual(vms.filter((v) => v.hostId === h.id).map((v) => v.id).sort());
    }
    const started = sim.events().find((e) => e.vmId === vms[1]?.id && e.code === 32);
    expect(started).toMatchObject({ description: 'VM spread1 started on Host sim-host2', hostId: hostNamed('sim-host2').id });
    // follow=host inlines the host it runs on
    const followed = await raw(`/vms/${vms[2]?.id ?? ''}`, { follow: 'host' });
    expect(followed['host']).toMatchObject({ id: hostNamed('sim-host3').id, name: 'sim-host3', address: '127.0.0.1' });
  });

  test('a pinned VM runs on its host, whatever the load; placement_policy.hosts names it', async () => {
    const down = await tiny('pinned-down', { host: 'sim-host2' });
    expect(down).toMatchObject({ status: 'down', hostId: null, hostName: null, pinnedHostId: hostNamed('sim-host2').id });
    expect((await admin.getVm(down.id)).hostId).toBeUndefined();
    expect((await raw(`/vms/${down.id}`))['placement_policy']).toEqual({ affinity: 'migratable', hosts: { host: [{ href: `/ovirt-engine/api/hosts/${hostNamed('sim-host2').id}`, id: hostNamed('sim-host2').id }] } });

    const pinned = await tiny('pinned3', { host: 'sim-host3', running: true });
    expect(pinned.hostName).toBe('sim-host3');
    expect((await admin.getVm(pinned.id)).hostId).toBe(hostNamed('sim-host3').id);
    expect(load()).toEqual({ 'sim-host': 2, 'sim-host2': 2, 'sim-host3': 3 });
    await expect(tiny('nowhere', { host: 'sim-host9' })).rejects.toThrow(/no host sim-host9/);

    // POST /vms with placement_policy.hosts pins too (no disks: its QEMU runs without any)
    const made = (await admin.connection.request({
      method: 'POST',
      path: '/vms',
      body: { name: 'pinned-rest', cluster: { name: 'Default' }, template: { name: 'Blank' }, placement_policy: { hosts: { host: [{ name: 'sim-host2' }] } } },
    })) as Json;
    expect(made['placement_policy']['hosts']['host'][0]['id']).toBe(hostNamed('sim-host2').id);
    await admin.startVm(made['id'] as string);
    expect(sim.vmById(made['id'] as string).hostName).toBe('sim-host2');
    await admin.stopVm(made['id'] as string);
  });

  test('stop leaves no host; start places the VM again (pause too), a pinned one on its host', async () => {
    const [spread0, spread1, spread4] = ['spread0', 'spread1', 'spread4'].map((n) => sim.vmByName(n));
    if (!spread0 || !spread1 || !spread4) throw new Error('the VMs of the previous test are missing');
    await admin.stopVm(spread0.id);
    expect(sim.vmById(spread0.id)).toMatchObject({ status: 'down', hostId: null, hostName: null });
    expect((await admin.getVm(spread0.id)).hostId).toBeUndefined();
    expect(sim.events().filter((e) => e.vmId === spread0.id).pop()).toMatchObject({ code: 33, hostId: hostNamed('sim-host').id });
    expect(sim.events().filter((e) => e.vmId === spread0.id).pop()?.description).toContain('(Host: sim-host)');

    // sim-host2 empties: spread0 starts there, not where it ran before
    await admin.stopVm(spread1.id);
    await admin.stopVm(spread4.id);
    expect(load()).toEqual({ 'sim-host': 1, 'sim-host2': 0, 'sim-host3': 3 });
    await admin.startVm(spread0.id);
    expect(sim.vmById(spread0.id)).toMatchObject({ status: 'up', hostName: 'sim-host2' });
    expect((await admin.getVm(spread0.id)).hostId).toBe(hostNamed('sim-host2').id);
    // a tie goes to the first host; start with pause places the same way
    await admin.startVm(spread1.id, { pause: true });
    expect(sim.vmById(spread1.id)).toMatchObject({ status: 'paused', hostName: 'sim-host' });
    expect((await admin.getVm(spread1.id)).hostId).toBe(hostNamed('sim-host').id);
    expect(sim.events().filter((e) => e.vmId === spread1.id).pop()).toMatchObject({ code: 68, description: 'VM spread1 started on Host sim-host in paused mode' });
    await admin.startVm(spread4.id);
    expect(sim.vmById(spread4.id).hostName).toBe('sim-host2');
    expect(load()).toEqual({ 'sim-host': 2, 'sim-host2': 2, 'sim-host3': 3 });

    // the busiest host, but the pinned VM goes back there
    const pinned = sim.vmByName('pinned3');
    await admin.stopVm(pinned.id);
    await admin.startVm(pinned.id);
    expect(sim.vmById(pinned.id)).toMatchObject({ status: 'up', hostName: 'sim-host3' });
    expect(load()).toEqual({ 'sim-host': 2, 'sim-host2': 2, 'sim-host3': 3 });
  });

  test('an engine restart on the same data dir brings the running VMs back on their hosts', async () => {
    const before = sim.vmIds().map((id) => sim.vmById(id));
    expect(before.filter((v) => v.status !== 'down')).toHaveLength(7);
    await admin.close();
    await sim.close();
    // `hosts` only counts on a fresh data dir: the engine keeps the three it has
    use(await EngineSim.start({ dataDir: dir, hosts: 5, seed: false }));
    expect(sim.hostIds()).toEqual(hosts);
    expect((await admin.listHosts()).map((h) => h.id)).toEqual(hosts.map((h) => h.id));
    for (const b of before) {
      const after = sim.vmById(b.id);
      expect({ name: after.name, status: after.status, hostId: after.hostId }).toEqual({ name: b.name, status: b.status, hostId: b.hostId });
      expect((await admin.getVm(b.id)).hostId).toBe(b.hostId ?? undefined);
    }
    expect(load()).toEqual({ 'sim-host': 2, 'sim-host2': 2, 'sim-host3': 3 });
    // and placement goes on from there
    const next = await tiny('after-restart', { running: true });
    expect(next.hostName).toBe('sim-host');
  });

  test('a state.json of the single-host shape (hostId, hostHwId) loads: that host, its VMs running on it', async () => {
    const odir = await fs.mkdtemp(path.join(os.tmpdir(), 'esim-hosts-old-'));
    let old = await EngineSim.start({ dataDir: odir, seed: false });
    try {
      expect(old.hostIds().map((h) => h.name)).toEqual(['sim-host']);
      const vm = await old.addVm({ name: 'legacy', disks: [{ sizeBytes: 4 * MiB, format: 'raw' }], running: true });
      const hostId = vm.hostId;
      expect(hostId).toBe(old.hostIds()[0]?.id);
      await old.close();
      // rewrite the state as the single-host simulator wrote it
      const file = path.join(odir, 'state.json');
      const st = JSON.parse(await fs.readFile(file, 'utf8')) as Json;
      const host = (st['hosts'] as Json[])[0] ?? {};
      delete st['hosts'];
      st['version'] = 1;
      st['hostId'] = host['id'];
      st['hostHwId'] = host['hwId'];
      for (const v of st['vms'] as Json[]) delete v['runOnHostId'];
      await fs.writeFile(file, JSON.stringify(st));

      old = await EngineSim.start({ dataDir: odir, seed: false });
      expect(old.hostIds()).toEqual([{ id: hostId, name: 'sim-host' }]);
      expect(old.vmById(vm.id)).toMatchObject({ status: 'up', hostId, hostName: 'sim-host' });
      const client = adminClient(old);
      try {
        const [only] = await client.listHosts({ search: `hw_id=${String(host['hwId'])}` });
        expect(only?.id).toBe(hostId);
        expect((await client.getVm(vm.id)).hostId).toBe(hostId);
      } finally {
        await client.close().catch(() => undefined);
      }
      const migrated = JSON.parse(await fs.readFile(file, 'utf8')) as Json;
      expect(migrated).toMatchObject({ version: 3, hosts: [{ id: hostId, name: 'sim-host', hwId: host['hwId'] }] });
      expect(migrated['hostId']).toBeUndefined();
    } finally {
      await old.close();
      await fs.rm(odir, { recursive: true, force: true });
    }
  });
});
