import type { QmpEventListener } from './events';
import type { QmpArgs, QmpCommandName, QmpResult } from './commands';

export interface QmpCallOptions {
  /** Default 60 s: QMP commands return quickly; block work happens in jobs, followed by events. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * What the backup needs from a VM's monitor. A direct QMP socket implements it (QmpClient);
 * other transports (libvirt's `virsh qemu-monitor-command`) can implement it too.
 */
export interface QmpSession {
  execute<K extends QmpCommandName>(name: K, args: QmpArgs<K>, opts?: QmpCallOptions): Promise<QmpResult<K>>;
  /** Subscribes to every event; returns the unsubscribe function. */
  onEvent(listener: QmpEventListener): () => void;
  /** Called once when the session ends, with the reason when it was not a clean close. */
  onClose(listener: (reason: Error | undefined) => void): () => void;
  readonly closed: boolean;
  close(): Promise<void>;
}
