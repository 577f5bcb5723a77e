import { randomUUID } from 'crypto';
import { grant } from './access';
import { seedUserName } from './accounts';
import { seedImage } from './images';
import { role } from './roles';
import type { SimContext } from './context';
import type { DiskFormat, SimVmRecord } from './state';

const MiB = 1024 * 1024;

export interface NewVm {
  name: string;
  disks: Array<{ sizeBytes: number; format: DiskFormat; description?: string }>;
  running?: boolean;
  /** user1@internal gets UserRole on the VM (as the seed gives it on web01) */
  permittedToPlainUser?: boolean;
  /** pins the VM to this host (name or id) */
  host?: string;
}

/** A VM as the engine would hold it after "New VM" + disks + one NIC (all images ready). */
export async function createVm(ctx: SimContext, p: NewVm): Promise<SimVmRecord> {
  const st = ctx.state;
  if (st.data.vms.some((v) => v.name === p.name)) throw new Error(`a vm named ${p.name} exists`);
  const pinned = p.host === undefined ? undefined : st.hostByRef(p.host);
  if (p.host !== undefined && !pinned) throw new Error(`engine simulator has no host ${p.host} (hosts: ${st.data.hosts.map((h) => h.name).join(', ')})`);
  const vm: SimVmRecord = {
    id: randomUUID(),
    name: p.name,
    description: '',
    comment: '',
    status: 'down',
    memory: 1024 * MiB,
    sockets: 1,
    osType: 'rhel_8x64',
    clusterId: st.data.clusterId,
    creationTime: Date.now(),
    stopTime: Date.now(),
    attachments: [],
    nics: [{ id: randomUUID(), name: 'nic1', interface: 'virtio', mac: st.nextMac(), linked: true, plugged: true }],
    tagIds: [],
  };
  if (pinned) vm.pinnedHostId = pinned.id;
  const sd = st.data.storageDomains[0];
  if (!sd) throw new Error('no storage domain');
  for (const [i, d] of p.disks.entries()) {
    const disk = await ctx.createDisk({
      alias: `${p.name}_Disk${i + 1}`,
      description: d.description ?? '',
      format: d.format,
      sparse: true,
      backup: d.format === 'cow' ? 'incremental' : 'none',
      provisionedSize: d.sizeBytes,
      storageDomainId: sd.id,
    });
    while (st.disk(disk.id)?.status === 'locked') await new Promise((r) => setTimeout(r, 10));
    vm.attachments.push({ diskId: disk.id, interface: 'virtio', bootable: i === 0, active: true, passDiscard: false, readOnly: false });
  }
  st.data.vms.push(vm);
  st.save();
  const plain = st.userByName(seedUserName('plain'));
  if (p.permittedToPlainUser && plain) grant(st, { roleId: role('UserRole').id, principalId: plain.id, object: { kind: 'vm', id: vm.id } });
  return vm;
}

/**
 * First start of an engine: tags `daily` / `weekly`, and three VMs with real data on every disk
 * (a few MiB of random data at several offsets, so a backup has something to read):
 * - web01: up, qcow2 (incremental backup) + raw disks, tagged daily, visible to user1;
 *   (the other seed users' grants on these VMs follow in accounts.ts grantSeedRoles)
 * - db01: down, qcow2 + a raw scratch disk described `backup=0`, tagged daily and weekly;
 * - app01: down, one raw disk, no tags, not visible to user1.
 */
export async function seedEngine(ctx: SimContext): Promise<void> {
  const st = ctx.state;
  const daily = { id: randomUUID(), name: 'daily', description: 'Daily backup policy', parentId: '00000000-0000-0000-0000-000000000000' };
  const weekly = { id: randomUUID(), name: 'weekly', description: 'Weekly backup policy', parentId: daily.parentId };
  st.data.tags.push(daily, weekly);
  const web = await createVm(ctx, { name: 'web01', disks: [{ sizeBytes: 64 * MiB, format: 'cow' }, { sizeBytes: 32 * MiB, format: 'raw' }], permittedToPlainUser: true });
  const db = await createVm(ctx, { name: 'db01', disks: [{ sizeBytes: 48 * MiB, format: 'cow' }, { sizeBytes: 16 * MiB, format: 'raw', description: 'scratch space backup=0' }] });
  const app = await createVm(ctx, { name: 'app01', disks: [{ sizeBytes: 32 * MiB, format: 'raw' }] });
  web.tagIds.push(daily.id);
  db.tagIds.push(daily.id, weekly.id);
  web.description = 'web server';
  db.description = 'database';
  app.description = 'application server';
  st.save();
  for (const vm of [web, db, app]) {
    for (const a of vm.attachments) {
      const disk = st.disk(a.diskId);
      if (!disk) continue;
      const size = disk.provisionedSize;
      await seedImage(
        st.abs(disk.file),
        disk.format,
        [
          { offset: 0, length: MiB },
          { offset: 3 * MiB + 4096, length: MiB / 2 },
          { offset: Math.floor(size / 2), length: MiB },
          { offset: size - MiB, length: MiB },
        ],
        ctx.power.dirs.scratchDir,
      );
    }
  }
  await ctx.power.start(web, false);
}
