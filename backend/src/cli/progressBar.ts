/**
 * A one-line progress bar on a terminal (stderr). Off when stderr is not a TTY or output is
 * JSON: scripts and logs get no control characters.
 */
export class ProgressBar {
  private lastDraw = 0;
  /** when data started moving: the rate ignores set-up time */
  private started = 0;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream, private readonly enabled: boolean) {}

  static forStderr(json: boolean): ProgressBar {
    return new ProgressBar(process.stderr, !json && process.stderr.isTTY === true);
  }

  update(done: number, total: number, label: string): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (done > 0 && this.started === 0) this.started = now;
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    const width = 20;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(frac * width);
    const secs = Math.max(0.001, (now - (this.started || now)) / 1000);
    const line =
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
      `${formatBytes(done)}/${formatBytes(total)} ${formatBytes(done / secs)}/s ${label}`;
    this.stream.write(`\r${line.slice(0, (this.stream.columns ?? 120) - 1)}\x1b[K`);
    this.drawn = true;
  }

  finish(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}
