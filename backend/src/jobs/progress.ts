import type { JobProgress, RunnerProgress } from './model';

/** Rate is measured over this window: long enough to smooth chunk bursts, short enough to
 *  follow a slowdown. */
const WINDOW_MS = 5_000;

/**
 * Turns a runner's raw counters into what a person watches: a rate over the last seconds and
 * an ETA, and decides when a change is worth sending (phase changes at once, byte counters at
 * most every `intervalMs`) so a fast copy does not flood browsers.
 */
export class ProgressTracker {
  private samples: Array<{ t: number; bytes: number }> = [];
  private lastEmit = 0;
  private lastPhase: string | undefined;
  private lastDisk: string | null | undefined;
  current: JobProgress | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns the progress to publish, or undefined when it is too soon after the last one. */
  update(p: RunnerProgress): JobProgress | undefined {
    const t = this.now();
    this.samples.push({ t, bytes: p.bytesDone });
    while (this.samples.length > 2 && (this.samples[0]?.t ?? t) < t - WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    const dt = first ? (t - first.t) / 1000 : 0;
    const rate = first && dt > 0.2 ? Math.max(0, (p.bytesDone - first.bytes) / dt) : (this.current?.rateBytesPerSec ?? 0);
    const remaining = Math.max(0, p.bytesTotal - p.bytesDone);
    const eta = p.phase === 'done' ? 0 : rate > 0 && p.bytesTotal > 0 ? Math.ceil(remaining / rate) : null;
    this.current = { ...p, rateBytesPerSec: Math.round(rate), etaSeconds: eta, updatedAt: new Date(t).toISOString() };
    const changed = p.phase !== this.lastPhase || p.disk !== this.lastDisk;
    if (!changed && t - this.lastEmit < this.intervalMs) return undefined;
    this.lastEmit = t;
    this.lastPhase = p.phase;
    this.lastDisk = p.disk;
    return this.current;
  }
}
