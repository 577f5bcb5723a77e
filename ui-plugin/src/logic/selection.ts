/**
 * What WebAdmin's VM list selection allows. These feed `isEnabled`, which must return a real
 * boolean (anything else counts as true, reference §2.4), so they never return anything else.
 */
export interface SelectedVm {
  id: string;
  name: string;
  status: string;
}

/** WebAdmin hands over EntityObjects `{id, name, ipaddress, status, managed}` (§2.9). */
export function toSelectedVms(items: unknown): SelectedVm[] {
  if (!Array.isArray(items)) return [];
  const out: SelectedVm[] = [];
  for (const it of items as unknown[]) {
    if (typeof it !== 'object' || it === null) continue;
    const o = it as Record<string, unknown>;
    if (typeof o.id !== 'string' || o.id === '') continue;
    out.push({ id: o.id, name: typeof o.name === 'string' ? o.name : o.id, status: typeof o.status === 'string' ? o.status : '' });
  }
  return out;
}

/** Backup now: one or more VMs, in any state (a VM that is down is started paused). */
export function canBackup(items: unknown): boolean {
  return toSelectedVms(items).length >= 1;
}

/** Restore…: exactly one VM. */
export function canRestore(items: unknown): boolean {
  return toSelectedVms(items).length === 1;
}
