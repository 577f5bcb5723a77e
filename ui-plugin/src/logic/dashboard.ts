// The dashboard's pure sums and choices: the last 24 hours, the VMs whose next backup is full, repository fill.
import type { DiskChainHealth, FullReason, Job, VmSummary } from '../../../backend/src/api/contract';

export interface DaySummary {
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Sum of stored bytes of the successful backups. */
  bytesStored: number;
}

/** Backup jobs that finished within `hours` before `now` (restores and verifies are not backups). 'interrupted' counts as failed. */
export function summarizeRecent(jobs: Job[], now: number, hours = 24): DaySummary {
  const since = now - hours * 3600_000;
  const s: DaySummary = { succeeded: 0, failed: 0, cancelled: 0, bytesStored: 0 };
  for (const j of jobs) {
    if (!j.finishedAt || j.kind !== 'backup') continue;
    const t = Date.parse(j.finishedAt);
    if (Number.isNaN(t) || t < since || t > now + 60_000) continue;
    if (j.state === 'succeeded') {
      s.succeeded++;
      s.bytesStored += j.result?.bytesStored ?? 0;
    } else if (j.state === 'failed' || j.state === 'interrupted') s.failed++;
    else if (j.state === 'cancelled') s.cancelled++;
  }
  return s;
}

export interface NextFull {
  vm: VmSummary;
  disks: Array<{ alias: string; reason: FullReason | 'excluded' | null }>;
}

/** VMs whose next backup copies at least one disk whole, with the disks and why. */
export function vmsNextFull(vms: VmSummary[]): NextFull[] {
  const out: NextFull[] = [];
  for (const vm of vms) {
    const disks = vm.chain.filter((d: DiskChainHealth) => !d.excluded && d.state === 'will-be-full').map((d) => ({ alias: d.alias, reason: d.reason }));
    if (disks.length > 0) out.push({ vm, disks });
  }
  return out.sort((a, b) => a.vm.name.localeCompare(b.vm.name));
}

/** Share of the file system the repository uses, 0–1; null when free space is unknown. */
export function repositoryFill(usedBytes: number, freeBytes: number | null): number | null {
  if (freeBytes === null || freeBytes < 0) return null;
  const total = usedBytes + freeBytes;
  return total > 0 ? usedBytes / total : 0;
}
