import type { GuestAgent, QmpSession } from '../qmp';
import type { HostLink } from './hostLink';

/** A host link that can also find a VM's monitor by the VM's engine id. */
export interface VmHostLink extends HostLink {
  openQmp(vm: { id: string; name: string }, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<QmpSession>;
  /** The VM's QEMU guest agent channel (qemu-ga in the guest); `QGA_UNAVAILABLE` when this
   *  link has none for the VM. Connecting proves nothing: the agent may still not answer. */
  openGuestAgent(vm: { id: string; name: string }, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<GuestAgent>;
}
