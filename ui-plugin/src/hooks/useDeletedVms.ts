/**
 * The Deleted VMs tab's data and action: the VMs the engine no longer has whose restore points
 * the repository still holds (`GET /deleted-vms`, backup admins only), reloaded with the place's
 * `refresh`, and Restore…, which opens the Restore dialog on a VM's newest point (the dialog's
 * point list offers the others) with the choice of bringing it back under its original ids.
 */
import type { DeletedVm } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { useLoader } from './useLoader';

export interface DeletedVms {
  /** null until loaded. */
  vms: DeletedVm[] | null;
  error: unknown;
  reload: () => void;
  openRestore: (vm: DeletedVm) => void;
}

export function useDeletedVms(refresh: unknown[]): DeletedVms {
  const { client, bridge, t } = useApp();
  const list = useLoader(() => client.deletedVmList(), refresh);
  return {
    vms: list.data?.vms ?? null,
    error: list.error,
    reload: list.reload,
    openRestore: (vm) => bridge.openRestore({ id: vm.id, name: vm.name }, vm.lastPoint.id, t, { deleted: true }),
  };
}
