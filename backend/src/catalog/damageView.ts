import type { DamageMark } from '../repository';

/** How long the damage marks read from the repository are reused (a verify job forgets them). */
const DAMAGE_TTL_MS = 10_000;

/** The repository's damage marks (verify's verdicts), cached briefly for the VM list and the point
 *  details, which show them on every request. */
export class DamageView {
  private cached: { at: number; marks: Promise<DamageMark[]> } | undefined;

  constructor(private readonly read: () => Promise<DamageMark[]>) {}

  marks(): Promise<DamageMark[]> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > DAMAGE_TTL_MS) {
      const marks = this.read();
      this.cached = { at: now, marks };
      marks.catch(() => {
        if (this.cached?.marks === marks) this.cached = undefined;
      });
    }
    return this.cached.marks;
  }

  async isDamaged(pointId: string): Promise<boolean> {
    return (await this.marks()).some((m) => m.pointId === pointId);
  }

  /** Damaged points per VM key (= engine VM id for points the service made). */
  async countByVm(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const m of await this.marks()) if (m.vmKey) out.set(m.vmKey, (out.get(m.vmKey) ?? 0) + 1);
    return out;
  }

  invalidate(): void {
    this.cached = undefined;
  }
}
