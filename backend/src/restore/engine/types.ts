import type { EngineClient } from '../../engine';
import type { Progress } from '../../util/progress';
import type { PointSource } from '../pointSource';

export type RestorePhase = 'creating-disks' | 'uploading' | 'finalizing' | 'creating-vm' | 'attaching' | 'verifying' | 'done';

/** `disk`: the new disk's name, or null for whole-restore steps; bytes are guest bytes done in
 *  this phase over every disk (data sent + zero ranges). */
export type RestoreProgress = Progress<RestorePhase>;

/** Bounds of every wait; defaults fit a real engine. */
export interface RestoreTimeouts {
  /** One engine REST call. Default: the connection's own (60 s). */
  engineRequestMs: number;
  /** One imageio request (a PUT of up to 8 MiB, a zero, a flush, a GET). Default 120 s. */
  imageioRequestMs: number;
  /** A new disk turning `ok`. Default 10 min. */
  diskReadyMs: number;
  /** A transfer reaching `transferring`, or finishing after finalize / cancel. Default 5 min. */
  transferPhaseMs: number;
  /** Each step of the clean-up after a failure. Default 2 min. */
  cleanupMs: number;
}

export interface ExecuteDeps {
  /** The service account: creating disks, transfers and VMs needs admin rights. */
  engine: EngineClient;
  /** The point, open for reading (its manifest and indexes read once). */
  point: PointSource;
  signal?: AbortSignal;
  onProgress?: (p: RestoreProgress) => void;
  log?: (level: 'info' | 'warn' | 'error', msg: string) => void;
  timeouts?: Partial<RestoreTimeouts>;
  /** Requests in flight per disk, at most the ticket's max_writers; default (and cap) 4. */
  maxInFlight?: number;
  /** Read each disk back through a download transfer and compare checksums; default true. */
  verify?: boolean;
}

export interface RestoredDisk {
  device: string;
  diskId: string;
  name: string;
  /** SHA-256 (hex) of the guest-visible bytes of the point's disk. */
  sha256: string;
  /** Read back from the engine and found identical. */
  verified: boolean;
}

export interface RestoreResult {
  vmId: string | null;
  vmName: string | null;
  disks: RestoredDisk[];
  durationMs: number;
  warnings: string[];
  /** Per disk: what the upload sent (zero ranges go as zero requests, never as data). */
  uploads: UploadStats[];
}

export interface UploadStats {
  device: string;
  diskId: string;
  virtualSize: number;
  dataBytes: number;
  dataRequests: number;
  zeroBytes: number;
  zeroRequests: number;
  /** From the first request to the final flush. */
  seconds: number;
}

export const DEFAULT_TIMEOUTS: Omit<RestoreTimeouts, 'engineRequestMs'> = {
  imageioRequestMs: 120_000,
  diskReadyMs: 10 * 60_000,
  transferPhaseMs: 5 * 60_000,
  cleanupMs: 2 * 60_000,
};
