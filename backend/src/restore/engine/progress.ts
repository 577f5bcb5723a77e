import type { RestorePhase, RestoreProgress } from './types';

/** Progress for the caller: once per phase change and per completed request (each covers up
 *  to 8 MiB of data or a zero range, so there are few); a failing listener is ignored. */
export class ProgressReporter {
  constructor(private readonly sink: ((p: RestoreProgress) => void) | undefined) {}

  report(phase: RestorePhase, disk: string | null, bytesDone: number, bytesTotal: number): void {
    if (!this.sink) return;
    try {
      this.sink({ phase, disk, bytesDone, bytesTotal });
    } catch {
      // a failing listener must not fail the restore
    }
  }
}
