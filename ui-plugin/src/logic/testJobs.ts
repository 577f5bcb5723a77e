// Test data builders (jobs, VMs) for the plugin's unit tests.
import type { Job, VmSummary } from '../../../backend/src/api/contract';

/** Contract-shaped objects for the unit tests. */
export function makeJob(o: Partial<Job> & { id: string }): Job {
  return {
    kind: 'backup',
    state: 'queued',
    vmId: 'vm-1',
    vmName: 'web01',
    hostId: null,
    requestedBy: { id: 'u1', name: 'admin@internal' },
    forceFull: false,
    restore: null,
    createdAt: '2024-01-01T00:00:00Z',
    startedAt: null,
    finishedAt: null,
    cancelRequested: false,
    progress: null,
    result: null,
    error: null,
    ...o,
  };
}

export function makeVm(o: Partial<VmSummary> & { id: string; name: string }): VmSummary {
  return { description: '', status: 'up', clusterId: null, lastPoint: null, lastJob: null, pointCount: 0, nextMethod: 'qmp', chain: [], policies: [], access: { backup: true, download: true, restoreInto: true }, ...o };
}
