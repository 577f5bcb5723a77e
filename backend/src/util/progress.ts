/**
 * The progress every long operation reports (a backup, a restore, a verify), one shape for all
 * of them: the job queue adds rate, ETA and time on top, the CLI draws a bar from it.
 */
export interface Progress<Phase extends string> {
  phase: Phase;
  /** Disk being worked on (engine alias when known); null for whole-operation steps. */
  disk: string | null;
  bytesDone: number;
  /** May grow while disks' extents become known. */
  bytesTotal: number;
  disksDone: number;
  disksTotal: number;
}
