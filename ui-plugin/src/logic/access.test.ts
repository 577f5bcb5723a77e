// Unit tests of what the portal disables, and with which sentence, from the VMs' access flags and whoami.
import type { Policy, RestorePlanView, RestoreRequestBody, VmAccess } from '../../../backend/src/api/contract';
import { messagesFor, translator } from '../intl/messages';
import {
  adminDenial,
  backupAllDenial,
  backupDenial,
  browseFilesDenial,
  cancelDenial,
  deniedText,
  downloadDenial,
  policyCreateDenial,
  policyFieldDenials,
  policyManageDenial,
  policyVmDenial,
  REPOSITORY_VM_ID,
  restoreDenial,
  restoreIntoDenial,
  verifyDenial,
  type Caller,
  type VmRef,
} from './access';
import { emptyPolicyForm, formToPolicy, restrictedPolicyForm } from './policyForm';

const t = translator(messagesFor('en-US'));
const NONE: VmAccess = { backup: false, download: false, restoreInto: false };
const ALL: VmAccess = { backup: true, download: true, restoreInto: true };
const web: VmRef = { id: 'w', name: 'web01', access: ALL };
const db: VmRef = { id: 'd', name: 'db01', access: NONE };
const unknown: VmRef = { id: 'u', name: 'app01' };
const viewer: Caller = { userId: 'viewer-id', backupAdmin: false };
const admin: Caller = { userId: 'admin-id', backupAdmin: true };

describe('access: VM actions', () => {
  it('disables Backup now, Verify, Download and Restore into without the permit, naming it and the VM', () => {
    expect(backupDenial(web)).toBeNull();
    expect(deniedText(t, backupDenial(db))).toBe('You need the backup_disk permit on db01 (UserVmManager or DiskOperator role) to back it up.');
    expect(deniedText(t, verifyDenial(db))).toContain('backup_disk permit on db01');
    expect(deniedText(t, downloadDenial(db, viewer))).toContain('backup_disk and edit_disk_properties permits on db01');
    expect(deniedText(t, restoreIntoDenial(db))).toContain('configure_vm_storage permit on db01');
    expect(deniedText(t, browseFilesDenial(db))).toMatch(/^You need the backup_disk and edit_disk_properties permits on db01 .* to browse the files of its restore points/);
    expect(browseFilesDenial(web)).toBeNull();
    expect(browseFilesDenial(undefined)).toBeNull();
    // a backup admin may download any point (the service lets them)
    expect(downloadDenial(db, admin)).toBeNull();
  });

  it('never denies on what is not known yet', () => {
    expect(backupDenial(unknown)).toBeNull();
    expect(verifyDenial(undefined)).toBeNull();
    expect(downloadDenial(undefined, viewer)).toBeNull();
    expect(downloadDenial(unknown, null)).toBeNull();
    expect(adminDenial(null, 'deniedAudit')).toBeNull();
  });

  it('names the first VM of a selection that may not be backed up', () => {
    expect(backupAllDenial([web, unknown])).toBeNull();
    expect(backupAllDenial([web, db, { ...db, name: 'other' }])).toEqual({ key: 'deniedBackup', params: { vm: 'db01' } });
  });

  it('keeps what concerns every VM for backup admins', () => {
    expect(deniedText(t, adminDenial(viewer, 'deniedVerifyRepository'))).toMatch(/^Only a backup admin .* may verify the whole repository\.$/);
    expect(adminDenial(admin, 'deniedVerifyRepository')).toBeNull();
    expect(t('deniedAudit')).toContain('audit log');
  });
});

describe('access: cancel', () => {
  const job = (over: Partial<{ kind: 'backup' | 'restore' | 'verify'; vmId: string; requestedBy: { id: string; name: string } }>) => ({
    kind: 'backup' as const,
    vmId: 'd',
    vmName: 'db01',
    requestedBy: { id: 'viewer-id', name: 'viewer@internal' },
    ...over,
  });

  it('lets one cancel one\'s own restore always, one\'s own backup with backup_disk', () => {
    expect(cancelDenial(job({ kind: 'restore' }), viewer, db)).toBeNull();
    expect(cancelDenial(job({}), viewer, web)).toBeNull();
    expect(deniedText(t, cancelDenial(job({}), viewer, db))).toBe('You need the backup_disk permit on db01 (UserVmManager or DiskOperator role) to cancel this job.');
  });

  it('keeps someone else\'s job and a repository verify for backup admins', () => {
    const others = job({ requestedBy: { id: 'admin-id', name: 'admin@internal' } });
    expect(deniedText(t, cancelDenial(others, viewer, web))).toContain('may cancel a job admin@internal started');
    expect(cancelDenial(others, admin, web)).toBeNull();
    expect(cancelDenial(job({ kind: 'verify', vmId: REPOSITORY_VM_ID }), viewer, undefined)).toEqual({ key: 'deniedCancelRepository' });
    expect(cancelDenial(others, null, web)).toBeNull();
  });
});

describe('access: restore', () => {
  const plan = (over: Partial<RestorePlanView> = {}): RestorePlanView =>
    ({
      pointId: 'p',
      sourceVm: { id: 'w', name: 'web01' },
      mode: 'vm',
      vm: { name: 'web01-restored', clusterId: 'c1', clusterName: 'Default', regenerateIds: true, regenerateMacs: true, description: '', nics: [] },
      attachToVmId: null,
      useProxy: false,
      disks: [{ device: 'd0', diskId: 'x', name: 'n', storageDomainId: 'sd1', storageDomainName: 'data1', format: 'cow', sparse: true, provisionedSize: 1, dataBytes: 1, interface: 'virtio', bootable: true }],
      targets: { clusters: [{ id: 'c1', name: 'Default' }], storageDomains: [{ id: 'sd1', name: 'data1' }], vms: [{ id: 'd', name: 'db01' }] },
      ok: true,
      problems: [],
      ...over,
    }) as unknown as RestorePlanView;
  const asVm: RestoreRequestBody = { mode: 'vm', regenerateIds: true };
  const none = (): VmRef | undefined => undefined;

  it('allows a plan within the clusters and domains the user may create in', () => {
    expect(restoreDenial(plan(), asVm, viewer, none)).toBeNull();
  });

  it('says create_vm is missing when no cluster is the user\'s, create_disk when no domain is — naming none', () => {
    const noCluster = plan({ vm: null, targets: { clusters: [], storageDomains: [{ id: 'sd1', name: 'data1' }], vms: [] } as unknown as RestorePlanView['targets'] });
    expect(deniedText(t, restoreDenial(noCluster, asVm, viewer, none))).toBe('You need the create_vm permit on a cluster (PowerUserRole or VmCreator role) to restore a VM.');
    const noDomain = plan({ targets: { clusters: [{ id: 'c1', name: 'Default' }], storageDomains: [], vms: [] } as unknown as RestorePlanView['targets'] });
    expect(deniedText(t, restoreDenial(noDomain, asVm, viewer, none))).toBe('You need the create_disk permit on a storage domain (DiskCreator or PowerUserRole role) to restore disks.');
    // restoring disks into a VM needs no cluster
    expect(restoreDenial(plan({ vm: null, mode: 'disks', attachToVmId: null, targets: { clusters: [], storageDomains: [{ id: 'sd1', name: 'data1' }], vms: [] } as unknown as RestorePlanView['targets'] }), { mode: 'disks' }, viewer, none)).toBeNull();
    // a backup admin's plan is not limited: nothing denied whatever it lists
    expect(restoreDenial(noCluster, asVm, admin, none)).toBeNull();
  });

  it('keeps the original ids for backup admins, and attaching for those who may configure the VM', () => {
    expect(deniedText(t, restoreDenial(plan(), { mode: 'vm', regenerateIds: false }, viewer, none))).toContain('restore a VM under its original ids');
    expect(restoreDenial(plan(), { mode: 'vm', regenerateIds: false }, admin, none)).toBeNull();
    const attach = plan({ vm: null, mode: 'disks', attachToVmId: 'd' });
    expect(deniedText(t, restoreDenial(attach, { mode: 'disks', attachToVmId: 'd' }, viewer, (id) => (id === 'd' ? db : undefined)))).toContain('configure_vm_storage permit on db01');
    expect(restoreDenial(attach, { mode: 'disks', attachToVmId: 'd' }, viewer, () => ({ ...db, access: ALL }))).toBeNull();
  });
});

describe('access: policies', () => {
  const policy = (over: Partial<Policy>): Pick<Policy, 'selection' | 'retention' | 'lockDays'> => ({
    selection: { vmIds: ['w'] },
    retention: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
    lockDays: 0,
    ...over,
  });

  it('lets a non-admin manage a policy of chosen VMs that deletes nothing and locks nothing, with backup_disk on each', () => {
    expect(policyManageDenial(policy({}), viewer, [web, db])).toBeNull();
    expect(deniedText(t, policyManageDenial(policy({ selection: { vmIds: ['w', 'd'] } }), viewer, [web, db]))).toContain('backup_disk permit on db01');
    for (const p of [policy({ selection: { tag: 'daily' } }), policy({ retention: { keepLast: 3, daily: 0, weekly: 0, monthly: 0, yearly: 0 } }), policy({ lockDays: 7 })]) {
      expect(policyManageDenial(p, viewer, [web])).toEqual({ key: 'deniedPolicyManage' });
      expect(policyManageDenial(p, admin, [web])).toBeNull();
    }
  });

  it('lets a non-admin create a policy only with backup_disk on some VM, and put only such VMs in it', () => {
    expect(policyCreateDenial(viewer, [db])).toEqual({ key: 'deniedPolicyCreate' });
    expect(policyCreateDenial(viewer, [db, web])).toBeNull();
    expect(policyCreateDenial(viewer, [db, unknown])).toBeNull();
    expect(policyVmDenial(db, viewer)).toEqual({ key: 'deniedPolicyVm', params: { vm: 'db01' } });
    expect(policyVmDenial(db, admin)).toBeNull();
  });

  it('disables tag/search, retention and lock for non-admins, each with its reason', () => {
    const d = policyFieldDenials(viewer);
    expect([d.selection, d.retention, d.lock].map((x) => deniedText(t, x))).toEqual([
      expect.stringContaining('may select VMs by engine tag or search'),
      expect.stringContaining('retention rules that delete restore points'),
      expect.stringContaining('retention lock of its own'),
    ]);
    expect(policyFieldDenials(admin)).toEqual({ selection: null, retention: null, lock: null });
  });

  it('starts a non-admin from a form the service accepts from them', () => {
    const body = formToPolicy({ ...restrictedPolicyForm(emptyPolicyForm('UTC')), vmIds: ['w'] });
    expect(body.selection).toEqual({ vmIds: ['w'] });
    expect(body.retention).toEqual({ keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 });
    expect(body.lockDays).toBe(0);
    expect(policyManageDenial(body, viewer, [web])).toBeNull();
  });
});
