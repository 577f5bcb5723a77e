import type { RestorePhase, RestoreProgress } from './types';

/** Phases that come after every disk's data is in place. */
const AFTER_DISKS: readonly RestorePhase[] = ['creating-vm', 'attaching', 'done'];

/** Progress for the caller: once per phase change and per completed request (each covers up
 *  to 8 MiB of data or a zero range, so there are few); a failing listener is ignored. Disks
 *  are counted in plan order: the disk being worked on is the count of those before it. */
export class ProgressReporter {
  constructor(
    private readonly sink: ((p: RestoreProgress) => void) | undefined,
    private readonly disks: readonly string[],
  ) {}

  report(phase: RestorePhase, disk: string | null, bytesDone: number, bytesTotal: number): void {
    if (!this.sink) return;
    const disksTotal = this.disks.length;
    const disksDone = AFTER_DISKS.includes(phase) ? disksTotal : disk === null ? 0 : Math.max(0, this.disks.indexOf(disk));
    try {
      this.sink({ phase, disk, bytesDone, bytesTotal, disksDone, disksTotal });
    } catch {
      // a failing listener must not fail the restore
    }
  }
}
