import { chainHealth } from '../../backend/src/backup';
import { autoMethod } from '../../backend/src/backup/model';
import { planDisk } from '../../backend/src/backup/chainCheck';
import { chooseCheckpoint, engineDeviceName, parentCheckpointId, planEngineDisk, type CheckpointChoice } from '../../backend/src/backup/engineBackupPlan';
import { extentsSize, imageioExtentsToNbd } from '../../backend/src/backup/imageioSource';
import { planChunks } from '../../backend/src/backup/chunkPlan';
import type { Checkpoint, Vm } from '../../backend/src/engine';
import { parseBackup, parseBackupDisks, parseCheckpoints } from '../../backend/src/engine/parse/backup';
import { NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO } from '../../backend/src/nbd';
import type { BlockDevice } from '../../backend/src/qmp';
import type { Manifest, ManifestDisk } from '../../backend/src/repository';

const MiB = 1 << 20;
const GiB = 1 << 30;
const VM_ID = '5e2f3a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b';
const QCOW = '8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60';
const RAW = '3f9c1d2e-4a5b-4c6d-8e7f-0a1b2c3d4e5f';
const CP = 'c1c1c1c1-0000-4000-8000-000000000001';

function disk(diskId: string, p: Partial<ManifestDisk> = {}): ManifestDisk {
  return {
    device: engineDeviceName(diskId),
    node: '',
    format: 'qcow2',
    virtualSize: GiB,
    mode: 'full',
    reason: 'first-backup',
    bitmap: CP,
    bitmapPersistent: true,
    bytesRead: 0,
    chunksNew: 0,
    chunksReused: 0,
    chunksZero: 0,
    bytesStored: 0,
    index: { file: 'x.idx', sha256: '', chunkCount: 1 },
    meta: { diskId },
    ...p,
  };
}

function point(method: 'engine' | 'qmp' | undefined, checkpointId: string | undefined = CP, disks = [disk(QCOW), disk(RAW, { bitmap: '', format: 'raw' })]): Manifest {
  const engine = { vmId: VM_ID, clusterId: null, hostId: null, startedPaused: false, excluded: [], unmappedDevices: [], ...(checkpointId ? { checkpointId } : {}) };
  return {
    format: 'olvm-backup-point',
    version: 1,
    pointId: '20261126T100000Z-0123456789ab',
    vm: { key: VM_ID, name: 'web01', id: VM_ID },
    createdAt: '2026-11-26T10:00:00.000Z',
    completedAt: '2026-11-26T10:00:05.000Z',
    parentPointId: null,
    consistency: 'crash',
    chunkSize: MiB,
    disks,
    vmDefinition: null,
    lockedUntil: null,
    meta: { ...(method ? { method } : {}), engine },
  };
}

const created: Checkpoint = { id: CP, parentId: undefined, creationDate: undefined, state: 'created', description: undefined, vmId: VM_ID };
const FROM: CheckpointChoice = { fromCheckpointId: CP, reason: undefined };

describe('engine method planning (pure)', () => {
  test('the checkpoint to start from: only our last engine point’s, still known and valid', () => {
    expect(chooseCheckpoint({ parent: undefined, forceFull: false, checkpoint: undefined })).toEqual({ fromCheckpointId: undefined, reason: 'first-backup' });
    expect(chooseCheckpoint({ parent: point('engine'), forceFull: true, checkpoint: created })).toEqual({ fromCheckpointId: undefined, reason: 'forced' });
    expect(chooseCheckpoint({ parent: point('qmp'), forceFull: false, checkpoint: created })).toEqual({ fromCheckpointId: undefined, reason: 'method-changed' });
    // points from before the method existed are qmp points
    expect(chooseCheckpoint({ parent: point(undefined), forceFull: false, checkpoint: created })).toEqual({ fromCheckpointId: undefined, reason: 'method-changed' });
    expect(chooseCheckpoint({ parent: point('engine'), forceFull: false, checkpoint: null })).toEqual({ fromCheckpointId: undefined, reason: 'checkpoint-missing' });
    expect(chooseCheckpoint({ parent: point('engine', undefined), forceFull: false, checkpoint: undefined })).toEqual({ fromCheckpointId: undefined, reason: 'checkpoint-missing' });
    expect(chooseCheckpoint({ parent: point('engine'), forceFull: false, checkpoint: { ...created, state: 'invalid' } })).toEqual({ fromCheckpointId: undefined, reason: 'checkpoint-invalid' });
    expect(chooseCheckpoint({ parent: point('engine'), forceFull: false, checkpoint: { ...created, id: 'another' } })).toEqual({ fromCheckpointId: undefined, reason: 'checkpoint-missing' });
    expect(chooseCheckpoint({ parent: point('engine'), forceFull: false, checkpoint: created })).toEqual(FROM);
    expect(parentCheckpointId(point('engine'), false)).toBe(CP);
    expect(parentCheckpointId(point('engine'), true)).toBeUndefined();
    expect(parentCheckpointId(point('qmp'), false)).toBeUndefined();
  });

  test('each disk: incremental only when the engine serves it so and the parent has it at that size', () => {
    const base = { device: engineDeviceName(QCOW), diskBackup: 'incremental', virtualSize: GiB, parent: point('engine'), checkpoint: FROM, backupMode: 'incremental' as const, forceFull: false };
    expect(planEngineDisk(base)).toMatchObject({ mode: 'incremental', reason: 'incremental' });
    expect(planEngineDisk({ ...base, parent: undefined })).toMatchObject({ mode: 'full', reason: 'first-backup' });
    expect(planEngineDisk({ ...base, device: engineDeviceName('new-disk') })).toMatchObject({ mode: 'full', reason: 'first-backup' });
    expect(planEngineDisk({ ...base, forceFull: true })).toMatchObject({ reason: 'forced' });
    expect(planEngineDisk({ ...base, parent: point('qmp'), checkpoint: { fromCheckpointId: undefined, reason: 'method-changed' } })).toMatchObject({ reason: 'method-changed' });
    expect(planEngineDisk({ ...base, parentDamage: { devices: [base.device] } })).toMatchObject({ reason: 'parent-damaged' });
    expect(planEngineDisk({ ...base, parentDamage: { devices: ['other'] } })).toMatchObject({ mode: 'incremental' });
    expect(planEngineDisk({ ...base, virtualSize: 2 * GiB })).toMatchObject({ reason: 'disk-resized' });
    expect(planEngineDisk({ ...base, device: engineDeviceName(RAW), diskBackup: 'none', backupMode: 'full' })).toMatchObject({ reason: 'disk-not-incremental' });
    expect(planEngineDisk({ ...base, diskBackup: undefined })).toMatchObject({ reason: 'disk-not-incremental' });
    expect(planEngineDisk({ ...base, checkpoint: { fromCheckpointId: undefined, reason: 'checkpoint-invalid' }, backupMode: 'full' })).toMatchObject({ reason: 'checkpoint-invalid' });
    expect(planEngineDisk({ ...base, checkpoint: { fromCheckpointId: undefined, reason: 'checkpoint-missing' } })).toMatchObject({ reason: 'checkpoint-missing' });
    // the engine decided full (a disk not in the checkpoint, a redefinition that failed)
    expect(planEngineDisk({ ...base, backupMode: 'full' })).toMatchObject({ reason: 'engine-full' });
    expect(planEngineDisk({ ...base, backupMode: undefined })).toMatchObject({ reason: 'engine-full' });
  });

  test('the QMP method after an engine point: full with method-changed, whatever bitmap QEMU shows', () => {
    const device: BlockDevice = {
      deviceId: engineDeviceName(QCOW),
      qdevPath: '',
      nodeName: 'n',
      format: 'qcow2',
      virtualSize: GiB,
      readOnly: false,
      filename: '',
      canPersistBitmaps: true,
      // the engine's checkpoint bitmap carries the name the engine point recorded
      bitmaps: [{ name: CP, dirtyBytes: 0, recording: true, busy: false, persistent: true, inconsistent: false, granularity: 65536 }],
    };
    expect(planDisk(device, point('engine'), { forceFull: false })).toMatchObject({ mode: 'full', reason: 'method-changed' });
    expect(planDisk(device, point('qmp'), { forceFull: false })).toMatchObject({ mode: 'incremental' });
    expect(planDisk(device, point('engine'), { forceFull: true })).toMatchObject({ reason: 'forced' });
  });

  test('imageio extents become NBD extents: zero/hole for base:allocation, dirty for the dirty context, clipped and merged', () => {
    const zero = [
      { start: 0, length: MiB, zero: false, hole: false, dirty: undefined },
      { start: MiB, length: MiB, zero: true, hole: true, dirty: undefined },
      { start: 2 * MiB, length: MiB, zero: true, hole: false, dirty: undefined },
      { start: 3 * MiB, length: MiB, zero: false, hole: false, dirty: undefined },
    ];
    expect(extentsSize(zero)).toBe(4 * MiB);
    expect(imageioExtentsToNbd(zero, 'allocation', 0, 4 * MiB)).toEqual([
      { offset: 0, length: MiB, flags: 0 },
      { offset: MiB, length: MiB, flags: NBD_STATE_ZERO | NBD_STATE_HOLE },
      { offset: 2 * MiB, length: MiB, flags: NBD_STATE_ZERO },
      { offset: 3 * MiB, length: MiB, flags: 0 },
    ]);
    expect(imageioExtentsToNbd(zero, 'allocation', MiB / 2, 2 * MiB)).toEqual([
      { offset: MiB / 2, length: MiB / 2, flags: 0 },
      { offset: MiB, length: MiB, flags: NBD_STATE_ZERO | NBD_STATE_HOLE },
      { offset: 2 * MiB, length: MiB / 2, flags: NBD_STATE_ZERO },
    ]);
    const dirty = [
      { start: 0, length: MiB, zero: false, hole: false, dirty: false },
      { start: MiB, length: MiB, zero: false, hole: false, dirty: false },
      { start: 2 * MiB, length: 2 * MiB, zero: true, hole: false, dirty: true },
    ];
    expect(imageioExtentsToNbd(dirty, 'dirty', 0, 4 * MiB)).toEqual([
      { offset: 0, length: 2 * MiB, flags: 0 },
      { offset: 2 * MiB, length: 2 * MiB, flags: NBD_STATE_DIRTY },
    ]);
    expect(() => extentsSize([{ start: 0, length: MiB, zero: false, hole: false, dirty: undefined }, { start: 2 * MiB, length: MiB, zero: false, hole: false, dirty: undefined }])).toThrow(/not contiguous/);
  });

  test('through the shared chunk planner: a dirty range that reads as zeros is a zero chunk, clean chunks are not touched', () => {
    const allocation = imageioExtentsToNbd(
      [
        { start: 0, length: 2 * MiB, zero: false, hole: false, dirty: undefined },
        { start: 2 * MiB, length: 2 * MiB, zero: true, hole: false, dirty: undefined },
      ],
      'allocation',
      0,
      4 * MiB,
    );
    const dirty = imageioExtentsToNbd(
      [
        { start: 0, length: MiB, zero: false, hole: false, dirty: false },
        { start: MiB, length: MiB + 4096, zero: false, hole: false, dirty: true },
        { start: 2 * MiB + 4096, length: 2 * MiB - 4096, zero: false, hole: false, dirty: false },
      ],
      'dirty',
      0,
      4 * MiB,
    );
    expect(planChunks({ size: 4 * MiB, chunkSize: MiB, allocation, dirty })).toEqual([
      { index: 1, offset: MiB, length: MiB, action: 'read' },
      { index: 2, offset: 2 * MiB, length: MiB, action: 'zero' },
    ]);
  });

  test('the forecast names the method: a switch is method-changed, the engine method’s non-incremental disks say so', () => {
    const vm = {
      id: VM_ID,
      status: 'up',
      startTime: new Date('2026-11-01T00:00:00Z'),
      diskAttachments: [
        { active: true, disk: { id: QCOW, alias: 'd1', description: '', provisionedSize: GiB, backup: 'incremental' } },
        { active: true, disk: { id: RAW, alias: 'd2', description: '', provisionedSize: GiB, backup: 'none' } },
      ],
    } as unknown as Vm;
    const last = (method: 'engine' | 'qmp') => ({
      createdAt: '2026-11-26T10:00:00.000Z',
      method,
      disks: [
        { diskId: QCOW, virtualSize: GiB, bitmapPersistent: true },
        { diskId: RAW, virtualSize: GiB, bitmapPersistent: true },
      ],
    });
    const reasons = (m: 'engine' | 'qmp', l: 'engine' | 'qmp') => chainHealth(vm, last(l), m).map((d) => d.reason);
    expect(reasons('engine', 'engine')).toEqual([null, 'disk-not-incremental']);
    expect(reasons('engine', 'qmp')).toEqual(['method-changed', 'method-changed']);
    expect(reasons('qmp', 'engine')).toEqual(['method-changed', 'method-changed']);
    expect(reasons('qmp', 'qmp')).toEqual([null, null]);
    // points without a method are qmp points; callers that pass none forecast the qmp method
    expect(chainHealth(vm, { ...last('qmp'), method: undefined }).map((d) => d.reason)).toEqual([null, null]);
  });
});

describe('engine backup API wire (JSON as the engine sends it)', () => {
  test('backups, their disks and checkpoints: strings for everything, dates in ms, unknown values never trusted', () => {
    const b = parseBackup({
      id: 'b1',
      phase: 'ready',
      from_checkpoint_id: 'c0',
      to_checkpoint_id: 'c1',
      creation_date: '1764151200000',
      vm: { href: '/ovirt-engine/api/vms/v1', id: 'v1' },
      host: { id: 'h1' },
      snapshot: { id: 's1' },
    });
    expect(b).toMatchObject({ id: 'b1', phase: 'ready', fromCheckpointId: 'c0', toCheckpointId: 'c1', vmId: 'v1', hostId: 'h1', snapshotId: 's1' });
    expect(b.creationDate?.toISOString()).toBe('2025-11-26T10:00:00.000Z');
    expect(parseBackup({ id: 'b2', phase: 'removing_snapshot' }).phase).toBe('unknown');
    expect(parseBackupDisks({ disk: [{ id: 'd1', backup_mode: 'incremental', format: 'cow', provisioned_size: '1073741824' }, { id: 'd2', backup_mode: 'full' }, { id: 'd3', backup_mode: 'odd' }, { id: 'd4' }] })).toEqual([
      { id: 'd1', alias: undefined, backupMode: 'incremental', format: 'cow', provisionedSize: GiB },
      { id: 'd2', alias: undefined, backupMode: 'full', format: undefined, provisionedSize: undefined },
      { id: 'd3', alias: undefined, backupMode: 'full', format: undefined, provisionedSize: undefined },
      { id: 'd4', alias: undefined, backupMode: undefined, format: undefined, provisionedSize: undefined },
    ]);
    expect(parseBackupDisks({})).toEqual([]);
    expect(parseCheckpoints({ checkpoint: { id: 'c1', parent_id: 'c0', state: 'created', vm: { id: 'v1' } } })).toEqual([
      { id: 'c1', parentId: 'c0', creationDate: undefined, state: 'created', description: undefined, vmId: 'v1' },
    ]);
    expect(parseCheckpoints({ checkpoint: [{ id: 'c2', state: 'weird' }] })[0]?.state).toBe('invalid');
  });
});

describe('auto: the rule the backup and the forecast share', () => {
  test('a running vm whose host the link reaches: qmp; unreachable, or down: engine (cold, never started)', () => {
    expect(autoMethod('up', true)).toBe('qmp');
    expect(autoMethod('paused', true)).toBe('qmp');
    expect(autoMethod('up', false)).toBe('engine');
    expect(autoMethod('down', true)).toBe('engine');
    expect(autoMethod('down', false)).toBe('engine');
  });
});
