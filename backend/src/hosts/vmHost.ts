import type { QmpSession } from '../qmp';
import type { HostLink } from './hostLink';

/** A host link that can also find a VM's monitor by the VM's engine id. */
export interface VmHostLink extends HostLink {
  openQmp(vm: { id: string; name: string }, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<QmpSession>;
}
