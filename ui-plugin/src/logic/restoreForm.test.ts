// Unit tests of the Restore… dialog's form: defaults, reducer, body, local problems, grouping, when Restore may start.
import type { RestoreProblem } from '../../../backend/src/api/contract';
import { messagesFor, translator } from '../intl/messages';
import {
  canSubmit,
  defaultVmName,
  diskChoice,
  formReducer,
  groupProblems,
  identityOf,
  identityVmName,
  initialForm,
  initialPointId,
  localProblems,
  plannedDomains,
  pointsNewestFirst,
  refusedProblems,
  restoreBody,
  shownProblems,
  type RestoreForm,
  type SubmitGate,
} from './restoreForm';

const t = translator(messagesFor('en-US'));
const DEVICES = ['ua-d1', 'ua-d2'];
const SD2 = '22222222-2222-2222-2222-222222222222';
const CLUSTER = '33333333-3333-3333-3333-333333333333';
const DB01 = '44444444-4444-4444-4444-444444444444';

function apply(form: RestoreForm, ...actions: Parameters<typeof formReducer>[1][]): RestoreForm {
  return actions.reduce(formReducer, form);
}

describe('restore form identity: a new VM or the original under its own ids', () => {
  it('starts a deleted VM on its original ids, name and MACs, and sends them so', () => {
    const f = initialForm('web01', 'p1', 'original');
    expect([f.vmName, f.regenerateIds, f.regenerateMacs, identityOf(f)]).toEqual(['web01', false, false, 'original']);
    expect(restoreBody(f, DEVICES)).toMatchObject({ mode: 'vm', vmName: 'web01', regenerateIds: false, regenerateMacs: false });
  });

  it('switches both ways, setting name, ids and MACs together, and keeps a MAC choice made after', () => {
    const orig = apply(initialForm('web01'), { type: 'identity', value: 'original', originalVmName: 'web01' });
    expect([orig.vmName, orig.regenerateIds, orig.regenerateMacs]).toEqual(['web01', false, false]);
    const macs = apply(orig, { type: 'flag', flag: 'regenerateMacs', value: true }, { type: 'identity', value: 'original', originalVmName: 'web01' });
    expect(macs.regenerateMacs).toBe(true); // choosing what is chosen already changes nothing
    const back = apply(macs, { type: 'identity', value: 'new', originalVmName: 'web01' });
    expect([back.vmName, back.regenerateIds, back.regenerateMacs, identityOf(back)]).toEqual(['web01-restored', true, true, 'new']);
  });
});

describe('restore form defaults', () => {
  it('restores a new VM named <original>-restored with new ids and MACs, straight to the host, every disk', () => {
    const f = initialForm('web01');
    expect(f).toEqual({
      pointId: null,
      fromOvf: true,
      vmName: 'web01-restored',
      clusterId: null,
      regenerateIds: true,
      regenerateMacs: true,
      useProxy: false,
      attachToVmId: null,
      disks: {},
    });
    expect(defaultVmName('db01')).toBe('db01-restored');
    // the name each identity gives, before the form exists (the dialog opened without one)
    expect([identityVmName('new', 'db01'), identityVmName('original', 'db01')]).toEqual(['db01-restored', 'db01']);
    expect(diskChoice(f, 'ua-d1')).toEqual({ include: true, name: '', storageDomainId: null });
  });

  it('opens on the point asked for when the VM has it, else the newest', () => {
    const points = [
      { id: 'p-old', completedAt: '2024-01-01T00:00:00Z' },
      { id: 'p-new', completedAt: '2024-03-01T00:00:00Z' },
      { id: 'p-mid', completedAt: '2024-02-01T00:00:00Z' },
    ];
    expect(pointsNewestFirst(points).map((p) => p.id)).toEqual(['p-new', 'p-mid', 'p-old']);
    expect(initialPointId(points, null)).toBe('p-new');
    expect(initialPointId(points, 'p-mid')).toBe('p-mid');
    expect(initialPointId(points, 'p-of-another-vm')).toBe('p-new');
    expect(initialPointId([], 'p-mid')).toBeNull();
  });
});

describe('restore request body from the form', () => {
  it('sends the VM choices and every disk of the point, leaving defaults to the service', () => {
    const f = apply(initialForm('web01', 'p1'), { type: 'vmName', value: '  web01-copy ' });
    expect(restoreBody(f, DEVICES)).toEqual({
      mode: 'vm',
      fromOvf: true,
      vmName: 'web01-copy',
      regenerateIds: true,
      regenerateMacs: true,
      useProxy: false,
      disks: [
        { device: 'ua-d1', include: true },
        { device: 'ua-d2', include: true },
      ],
    });
  });

  it('carries a chosen cluster, flags, a typed disk name, a chosen domain and a left-out disk', () => {
    const f = apply(
      initialForm('web01', 'p1'),
      { type: 'cluster', value: CLUSTER },
      { type: 'flag', flag: 'regenerateMacs', value: false },
      { type: 'flag', flag: 'useProxy', value: true },
      { type: 'disk', device: 'ua-d1', change: { name: ' web01-boot ' } },
      { type: 'disk', device: 'ua-d1', change: { storageDomainId: SD2 } },
      { type: 'disk', device: 'ua-d2', change: { include: false } },
    );
    expect(restoreBody(f, DEVICES)).toMatchObject({
      mode: 'vm',
      clusterId: CLUSTER,
      regenerateMacs: false,
      useProxy: true,
      disks: [
        { device: 'ua-d1', include: true, name: 'web01-boot', storageDomainId: SD2 },
        { device: 'ua-d2', include: false },
      ],
    });
    // a name cleared again goes back to the plan's default
    const cleared = formReducer(f, { type: 'disk', device: 'ua-d1', change: { name: '   ' } });
    expect(restoreBody(cleared, DEVICES).disks?.[0]).toEqual({ device: 'ua-d1', include: true, storageDomainId: SD2 });
  });

  it('restores disks only when the OVF switch is off (attached to a VM or left floating), with no VM fields', () => {
    const off = apply(initialForm('web01', 'p1'), { type: 'fromOvf', value: false }, { type: 'cluster', value: CLUSTER });
    expect(restoreBody(off, DEVICES)).toEqual({ mode: 'disks', useProxy: false, disks: [{ device: 'ua-d1', include: true }, { device: 'ua-d2', include: true }] });
    const attached = formReducer(off, { type: 'attachTo', value: DB01 });
    expect(restoreBody(attached, DEVICES)).toMatchObject({ mode: 'disks', attachToVmId: DB01 });
    expect(restoreBody(formReducer(attached, { type: 'attachTo', value: '' }), DEVICES)).not.toHaveProperty('attachToVmId');
  });

  it('restores disks only from a point without a VM definition, whatever the switch says', () => {
    expect(restoreBody(initialForm('web01', 'p1'), DEVICES, false).mode).toBe('disks');
  });

  it('only sends the devices of the point shown, keeping choices across points of the VM', () => {
    const f = apply(initialForm('web01', 'p1'), { type: 'disk', device: 'ua-gone', change: { include: false } }, { type: 'point', pointId: 'p2' });
    expect(f.pointId).toBe('p2');
    expect(f.disks['ua-gone']).toEqual({ include: false, name: '', storageDomainId: null });
    expect(restoreBody(f, DEVICES).disks?.map((d) => d.device)).toEqual(DEVICES);
    expect(formReducer(f, { type: 'point', pointId: 'p2' })).toBe(f);
  });
});

describe('checks before asking the service', () => {
  it('wants a VM name the engine accepts, disk names it accepts, and one disk at least', () => {
    expect(localProblems(initialForm('web01'), DEVICES, t)).toEqual([]);
    const empty = formReducer(initialForm('web01'), { type: 'vmName', value: '  ' });
    expect(localProblems(empty, DEVICES, t).map((p) => p.code)).toEqual(['VM_NAME_REQUIRED']);
    const bad = apply(initialForm('web01'), { type: 'vmName', value: 'web 01/x' }, { type: 'disk', device: 'ua-d2', change: { name: 'a b' } });
    expect(localProblems(bad, DEVICES, t)).toEqual([
      { severity: 'error', code: 'VM_NAME_INVALID', subject: 'web 01/x', message: expect.stringContaining('web 01/x') },
      { severity: 'error', code: 'DISK_NAME_INVALID', subject: 'ua-d2', message: expect.stringContaining('a b') },
    ]);
    // a bad name on a disk left out does not matter; no disk at all does
    const none = apply(bad, { type: 'vmName', value: 'ok' }, { type: 'disk', device: 'ua-d1', change: { include: false } }, { type: 'disk', device: 'ua-d2', change: { include: false } });
    expect(localProblems(none, DEVICES, t).map((p) => p.code)).toEqual(['NO_DISKS']);
    // disks only: the VM name is not asked for
    expect(localProblems(apply(empty, { type: 'fromOvf', value: false }), DEVICES, t)).toEqual([]);
  });
});

describe('problems in the dialog', () => {
  const p = (severity: 'error' | 'warning', code: string, subject?: string): RestoreProblem => ({ severity, code, message: `${code} ${subject ?? ''}`, ...(subject !== undefined ? { subject } : {}) });

  it('splits errors from warnings and puts each one at its field: VM name, cluster, attach, disk, domain', () => {
    const SD1 = '11111111-1111-1111-1111-111111111111';
    const problems = [
      p('error', 'VM_NAME_EXISTS', 'db01'),
      p('warning', 'VNIC_PROFILE_MISSING', 'nic1'),
      p('error', 'STORAGE_DOMAIN_FULL', SD1),
      p('warning', 'DISK_FORMAT_CHANGED', 'ua-d2'),
      p('error', 'CLUSTER_NOT_FOUND', CLUSTER),
      p('error', 'TARGET_VM_NOT_FOUND', DB01),
      p('error', 'NO_DISKS'),
      p('error', 'MAC_IN_USE', 'nic1'),
      p('error', 'VM_ID_EXISTS', 'vm-web01'),
      p('error', 'VM_NAME_EXISTS', 'db01'), // the same problem twice is shown once
    ];
    const g = groupProblems(problems, { devices: DEVICES, domainOf: { 'ua-d1': SD1, 'ua-d2': SD1 } });
    expect(g.errors.map((x) => x.code)).toEqual(['VM_NAME_EXISTS', 'STORAGE_DOMAIN_FULL', 'CLUSTER_NOT_FOUND', 'TARGET_VM_NOT_FOUND', 'NO_DISKS', 'MAC_IN_USE', 'VM_ID_EXISTS']);
    expect(g.macs.map((x) => x.code)).toEqual(['MAC_IN_USE']);
    expect(g.ids.map((x) => x.code)).toEqual(['VM_ID_EXISTS']);
    expect(g.warnings.map((x) => x.code)).toEqual(['VNIC_PROFILE_MISSING', 'DISK_FORMAT_CHANGED']);
    expect(g.vmName.map((x) => x.code)).toEqual(['VM_NAME_EXISTS']);
    expect(g.cluster.map((x) => x.code)).toEqual(['CLUSTER_NOT_FOUND']);
    expect(g.attachTo.map((x) => x.code)).toEqual(['TARGET_VM_NOT_FOUND']);
    // a full domain shows at every disk planned on it
    expect(g.byDisk['ua-d1']?.map((x) => x.code)).toEqual(['STORAGE_DOMAIN_FULL']);
    expect(g.byDisk['ua-d2']?.map((x) => x.code)).toEqual(['STORAGE_DOMAIN_FULL', 'DISK_FORMAT_CHANGED']);
    expect(groupProblems([], { devices: DEVICES })).toEqual({ errors: [], warnings: [], vmName: [], cluster: [], attachTo: [], ids: [], macs: [], byDisk: {} });
  });

  it('maps the plan\'s disks to their domains', () => {
    expect(plannedDomains({ disks: [{ device: 'ua-d1', storageDomainId: SD2 }] as never })).toEqual({ 'ua-d1': SD2 });
    expect(plannedDomains(null)).toEqual({});
  });

  it('reads the problems of a refused restore, ignoring anything malformed', () => {
    const e = p('error', 'MAC_IN_USE', 'nic1');
    expect(refusedProblems({ problems: [e, { severity: 'fatal', code: 'X', message: 'm' }, null, 'x'] })).toEqual([e]);
    expect(refusedProblems(null)).toEqual([]);
    expect(refusedProblems({ problems: 'none' })).toEqual([]);
  });

  it('shows the form\'s own problems first, then a refusal of this body until a newer plan, then the plan\'s', () => {
    const plan = { ok: true, problems: [p('warning', 'VNIC_PROFILE_MISSING', 'nic1')] };
    const refusal = { key: 'body-1', problems: [p('error', 'MAC_IN_USE', 'nic1')], plan };
    const local = [p('error', 'VM_NAME_REQUIRED')];
    expect(shownProblems({ local: [], refused: null, bodyKey: 'body-1', plan })).toEqual({ problems: plan.problems, planOk: true });
    expect(shownProblems({ local, refused: refusal, bodyKey: 'body-1', plan })).toEqual({ problems: local, planOk: false });
    expect(shownProblems({ local: [], refused: refusal, bodyKey: 'body-1', plan })).toEqual({ problems: refusal.problems, planOk: false });
    // the body changed, or a newer plan arrived for it: the refusal no longer stands
    expect(shownProblems({ local: [], refused: refusal, bodyKey: 'body-2', plan })).toEqual({ problems: plan.problems, planOk: true });
    expect(shownProblems({ local: [], refused: refusal, bodyKey: 'body-1', plan: { ...plan } })).toEqual({ problems: plan.problems, planOk: true });
    expect(shownProblems({ local: [], refused: null, bodyKey: 'body-1', plan: { ok: false, problems: refusal.problems } })).toEqual({ problems: refusal.problems, planOk: false });
    expect(shownProblems({ local: [], refused: null, bodyKey: '', plan: null })).toEqual({ problems: [], planOk: false });
  });
});

describe('when Restore may be pressed', () => {
  const ready: SubmitGate = { planStatus: 'ready', planCurrent: true, planOk: true, jobActive: false };
  it('only for a current plan without errors, not while its restore runs', () => {
    expect(canSubmit(ready)).toBe(true);
    expect(canSubmit({ ...ready, planOk: false })).toBe(false);
    expect(canSubmit({ ...ready, planCurrent: false })).toBe(false);
    for (const s of ['waiting', 'planning', 'invalid', 'failed'] as const) expect(canSubmit({ ...ready, planStatus: s })).toBe(false);
    expect(canSubmit({ ...ready, jobActive: true })).toBe(false);
  });
});
