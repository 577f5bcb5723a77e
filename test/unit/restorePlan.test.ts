import { readFileSync } from 'fs';
import * as path from 'path';
import { parseOvf } from '../../backend/src/engine';
import type { Manifest, ManifestDisk } from '../../backend/src/repository';
import { planRestore, planView, type RestoreInventory, type RestoreRequest, type UsableTargets } from '../../backend/src/restore/plan';

const OVF = readFileSync(path.resolve(__dirname, '../../../test/fixtures/ovf/web01.ovf'), 'utf8');
const GiB = 1024 ** 3;
const VM_ID = '5e2f3a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b';
const CLUSTER = 'c0000000-0000-4000-8000-000000000001';
const SD1 = 'd0000000-0000-4000-8000-000000000001';
const SD2 = 'd0000000-0000-4000-8000-000000000002';
const BLOCK = 'd0000000-0000-4000-8000-000000000003';
const DISK1 = '8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60';
const DISK2 = '3f9c1d2e-4a5b-4c6d-8e7f-0a1b2c3d4e5f';

function disk(device: string, diskId: string, alias: string, format: string, size: number): ManifestDisk {
  return {
    device,
    node: `n-${device}`,
    format,
    virtualSize: size,
    mode: 'incremental',
    reason: 'incremental',
    bitmap: 'olvm-backup-x',
    bitmapPersistent: format === 'qcow2',
    bytesRead: 0,
    chunksNew: 0,
    chunksReused: 0,
    chunksZero: 0,
    bytesStored: 0,
    index: { file: `${device}.idx`, sha256: '', chunkCount: 1 },
    meta: { diskId, alias, description: '' },
  };
}

const manifest: Manifest = {
  format: 'olvm-backup-point',
  version: 1,
  pointId: '20261126T100000Z-0123456789ab',
  vm: { key: VM_ID, name: 'web01', id: VM_ID },
  createdAt: '2026-11-26T10:00:00.000Z',
  completedAt: '2026-11-26T10:00:05.000Z',
  parentPointId: null,
  consistency: 'crash',
  chunkSize: 1 << 20,
  disks: [disk(`ua-${DISK1}`, DISK1, 'web01_Disk1', 'qcow2', 20 * GiB), disk(`ua-${DISK2}`, DISK2, 'web01_scratch', 'raw', 10 * GiB)],
  vmDefinition: { kind: 'ovf', content: OVF },
  lockedUntil: null,
  meta: { engine: { vmId: VM_ID, clusterId: CLUSTER } },
};

function inventory(p: Partial<RestoreInventory> = {}): RestoreInventory {
  return {
    clusters: [{ id: CLUSTER, name: 'Default' }],
    storageDomains: [
      { id: SD1, name: 'data1', type: 'data', status: 'active', isBlock: false, availableBytes: 100 * GiB },
      { id: SD2, name: 'data2', type: 'data', status: 'active', isBlock: false, availableBytes: 1 * GiB },
      { id: BLOCK, name: 'iscsi1', type: 'data', status: 'active', isBlock: true, availableBytes: 100 * GiB },
    ],
    vms: [{ id: VM_ID, name: 'web01', macs: ['56:6f:1a:2b:00:01', '56:6f:1a:2b:00:02'] }],
    diskIds: [DISK1, DISK2],
    vnicProfiles: [
      { id: 'p1', name: 'ovirtmgmt', networkName: 'ovirtmgmt', clusterIds: [CLUSTER] },
      { id: 'p2', name: 'backend-jumbo', networkName: 'backend', clusterIds: [CLUSTER] },
    ],
    ...p,
  };
}

let seq = 0;
const newId = (): string => `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;

function plan(request: Partial<RestoreRequest>, inv = inventory(), usable?: UsableTargets) {
  return planRestore({ manifest, dataBytes: { [`ua-${DISK1}`]: 2 * GiB, [`ua-${DISK2}`]: 512 << 20 }, request: { pointId: manifest.pointId, mode: 'vm', ...request }, inventory: inv, newId, ...(usable ? { usable } : {}) });
}

describe('restore planning (pure)', () => {
  test('a new VM beside the original: new ids, renamed disks, MACs cleared, the OVF rewritten to match', () => {
    const p = plan({ disks: [{ device: `ua-${DISK1}`, include: true, storageDomainId: SD1 }, { device: `ua-${DISK2}`, include: true, storageDomainId: SD1 }] });
    expect(p.problems).toEqual([]);
    expect(p.ok).toBe(true);
    expect(p.vm).toMatchObject({ name: 'web01-restored', clusterId: CLUSTER, regenerateIds: true, regenerateMacs: true });
    expect(p.disks.map((d) => [d.name, d.format, d.sparse, d.backup, d.provisionedSize])).toEqual([
      ['web01-restored_Disk1', 'cow', true, 'incremental', 20 * GiB],
      ['web01-restored_scratch', 'raw', false, 'none', 10 * GiB],
    ]);
    for (const d of p.disks) expect([DISK1, DISK2]).not.toContain(d.diskId);
    const ovf = parseOvf(p.vm!.ovf);
    expect(ovf.name).toBe('web01-restored');
    expect(ovf.description).toMatch(/^Restored by olvm-backup from web01 at /);
    expect(ovf.disks.map((d) => [d.diskId, d.imageId, d.alias, d.storageDomainId])).toEqual(p.disks.map((d) => [d.diskId, d.imageId, d.name, SD1]));
    expect(ovf.nics.map((n) => n.mac)).toEqual([undefined, undefined]);
    expect(p.vm!.nics.map((n) => [n.name, n.mac, n.vnicProfileId])).toEqual([
      [expect.any(String), null, 'p1'],
      [expect.any(String), null, 'p2'],
    ]);
  });

  test('keeping the MACs while the original runs with them is refused, naming the MAC and the VM', () => {
    const p = plan({ regenerateMacs: false, vmName: 'web01-copy' });
    expect(p.ok).toBe(false);
    expect(p.problems.filter((x) => x.code === 'MAC_IN_USE').map((x) => x.message)).toEqual([
      expect.stringContaining('56:6f:1a:2b:00:01 is in use by vm web01 (the original)'),
      expect.stringContaining('56:6f:1a:2b:00:02 is in use by vm web01 (the original)'),
    ]);
    expect(parseOvf(p.vm!.ovf).nics.map((n) => n.mac)).toEqual(['56:6f:1a:2b:00:01', '56:6f:1a:2b:00:02']);
  });

  test('a MAC in use by a vm other than the original does not name that vm (users see plans of vms they may not see)', () => {
    const inv = inventory();
    const p = plan({ regenerateMacs: false, vmName: 'web01-copy' }, { ...inv, vms: inv.vms.map((v) => (v.name === 'web01' ? { ...v, id: 'someone-else', name: 'secret-vm' } : v)) });
    const messages = p.problems.filter((x) => x.code === 'MAC_IN_USE').map((x) => x.message);
    expect(messages).toHaveLength(2);
    for (const m of messages) {
      expect(m).toContain('in use by another vm');
      expect(m).not.toContain('secret-vm');
    }
  });

  test('a vNIC profile the target cluster lacks is a warning; a taken name and a present original with kept ids are errors', () => {
    const p = plan({ vmName: 'web01', regenerateIds: false }, inventory({ vnicProfiles: [{ id: 'p1', name: 'ovirtmgmt', networkName: 'ovirtmgmt', clusterIds: [CLUSTER] }] }));
    const codes = p.problems.map((x) => `${x.severity}:${x.code}`);
    expect(codes).toEqual(expect.arrayContaining(['warning:VNIC_PROFILE_MISSING', 'error:VM_NAME_EXISTS', 'error:VM_ID_EXISTS', 'error:DISK_ID_EXISTS']));
    expect(p.ok).toBe(false);
  });

  test('an absent original comes back with its own ids', () => {
    const p = plan({ vmName: 'web01', regenerateIds: false, regenerateMacs: false }, inventory({ vms: [], diskIds: [] }));
    expect(p.problems).toEqual([]);
    expect(p.disks.map((d) => d.diskId)).toEqual([DISK1, DISK2]);
    expect(p.disks[0]?.imageId).toBe('b5481c2d-7e6f-4a8b-9c0d-1e2f3a4b5c6d');
    expect(parseOvf(p.vm!.ovf).disks.map((d) => d.diskId)).toEqual([DISK1, DISK2]);
  });

  test('room, domain kinds and formats: a full domain refuses, raw on block storage is preallocated, qcow2 there gets an initial size', () => {
    const full = plan({ disks: [{ device: `ua-${DISK1}`, include: true, storageDomainId: SD2 }] });
    expect(full.problems.map((x) => x.code)).toContain('STORAGE_DOMAIN_FULL');
    const block = plan({ disks: [{ device: `ua-${DISK1}`, include: true, storageDomainId: BLOCK }, { device: `ua-${DISK2}`, include: true, storageDomainId: BLOCK }] });
    expect(block.ok).toBe(true);
    expect(block.disks[0]).toMatchObject({ format: 'cow', sparse: true, initialSize: expect.any(Number) });
    expect(block.disks[0]!.initialSize!).toBeGreaterThan(2 * GiB);
    expect(block.disks[1]).toMatchObject({ format: 'raw', sparse: false, initialSize: null });
    const unknown = plan({ disks: [{ device: 'nope', include: true }] });
    expect(unknown.problems.map((x) => x.code)).toContain('UNKNOWN_DISK');
  });

  test("a user's plan: only the clusters and domains they may use are picked, named or offered; the hidden originals are 'not available to you', unnamed", () => {
    const MINE = 'c0000000-0000-4000-8000-000000000002';
    // the disks' original domains (the OVF's StorageId) exist, but this user may not create there
    const ovfDomains = parseOvf(OVF).disks.map((d) => d.storageDomainId!);
    const inv = inventory({
      clusters: [{ id: CLUSTER, name: 'Secret-cluster' }, { id: MINE, name: 'mine' }],
      storageDomains: [...inventory().storageDomains, ...ovfDomains.map((id, i) => ({ id, name: `secret-sd${i}`, type: 'data' as const, status: 'active' as const, isBlock: false, availableBytes: 100 * GiB }))],
      vnicProfiles: inventory().vnicProfiles.map((v) => ({ ...v, clusterIds: [CLUSTER, MINE] })),
    });
    const admin = plan({}, inv); // the originals
    expect([admin.vm?.clusterName, admin.disks.map((d) => d.storageDomainName)]).toEqual(['Secret-cluster', ['secret-sd0', 'secret-sd1']]);
    const usable = { clusterIds: new Set([MINE]), storageDomainIds: new Set([SD1]) };
    const p = plan({}, inv, usable);
    expect(p.ok).toBe(true);
    expect(p.vm).toMatchObject({ clusterId: MINE, clusterName: 'mine' });
    expect(p.disks.map((d) => d.storageDomainName)).toEqual(['data1', 'data1']);
    expect(p.problems.map((x) => [x.severity, x.code])).toEqual([
      ['warning', 'CLUSTER_NOT_FOUND'],
      ['warning', 'STORAGE_DOMAIN_NOT_USABLE'],
      ['warning', 'STORAGE_DOMAIN_NOT_USABLE'],
    ]);
    expect(p.problems.every((x) => x.message.includes('not available to you'))).toBe(true);
    const view = planView(p, inv, new Set(), usable);
    expect([view.targets.clusters.map((c) => c.name), view.targets.storageDomains.map((d) => d.name)]).toEqual([['mine'], ['data1']]);
    expect(JSON.stringify(view)).not.toMatch(/Secret-cluster|secret-sd|data2|iscsi1/);
    // asking for a hidden cluster or domain by id: not found or not yours, by the id asked
    const asked = plan({ clusterId: CLUSTER, disks: [{ device: `ua-${DISK1}`, include: true, storageDomainId: SD2 }] }, inv, usable);
    expect(asked.problems.filter((x) => x.severity === 'error').map((x) => x.message)).toEqual([
      `cluster ${CLUSTER} not found or not available to you`,
      `storage domain ${SD2} not found or not available to you`,
    ]);
    // nothing usable at all: said so, nothing named
    const none = plan({}, inv, { clusterIds: new Set(), storageDomainIds: new Set() });
    expect(none.problems.filter((x) => x.severity === 'error').map((x) => x.code)).toEqual(['CLUSTER_NOT_FOUND', 'STORAGE_DOMAIN_NOT_FOUND', 'STORAGE_DOMAIN_NOT_FOUND']); // not also "no disk selected": both are
    expect(JSON.stringify(planView(none, inv, new Set(), { clusterIds: new Set(), storageDomainIds: new Set() }))).not.toMatch(/Secret-cluster|mine|secret-sd|data1|data2|iscsi1/);
  });

  test('a disk left out is neither created nor named in the OVF; disks-only restores attach to an existing VM or fail clearly', () => {
    const p = plan({ disks: [{ device: `ua-${DISK2}`, include: false }] });
    expect(p.disks.map((d) => d.device)).toEqual([`ua-${DISK1}`]);
    expect(parseOvf(p.vm!.ovf).disks.map((d) => d.alias)).toEqual(['web01-restored_Disk1']);
    const attach = plan({ mode: 'disks', attachToVmId: VM_ID });
    expect(attach).toMatchObject({ ok: true, vm: null, attachToVmId: VM_ID });
    expect(attach.disks.every((d) => d.imageId === null)).toBe(true);
    expect(attach.disks.map((d) => d.name)).toEqual(['web01-restored_Disk1', 'web01-restored_scratch']);
    const missing = plan({ mode: 'disks', attachToVmId: '00000000-0000-4000-8000-00000000dead' });
    expect(missing.problems.map((x) => x.code)).toEqual(['TARGET_VM_NOT_FOUND']);
    const none = plan({ disks: [{ device: `ua-${DISK1}`, include: false }, { device: `ua-${DISK2}`, include: false }] });
    expect(none.problems.map((x) => x.code)).toContain('NO_DISKS');
  });
});
