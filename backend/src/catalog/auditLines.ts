import type { AuditEntry, AuditKind } from './model';
import type { AuditSource } from './audit';

/**
 * The record one line of an audit file holds, or undefined for a line that is not one. The two
 * files differ by one name: the repository's lines (FORMAT.md §12) say `action`, the service's
 * (an AuditEntry as written) say `kind`. Times are stored as `toISOString()` writes them, so
 * they sort as text whatever the writer's format.
 */
export function parseAuditLine(source: AuditSource, json: unknown): Omit<AuditEntry, 'source'> | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  const kind = source === 'repository' ? o['action'] : o['kind'];
  const ms = typeof o['time'] === 'string' ? Date.parse(o['time']) : NaN;
  if (Number.isNaN(ms) || typeof kind !== 'string' || kind === '' || typeof o['actor'] !== 'string') return undefined;
  const details = o['details'];
  return {
    time: new Date(ms).toISOString(),
    // a kind this program does not know yet (a newer CLI) is kept, not dropped
    kind: kind as AuditKind,
    actor: o['actor'],
    pointId: textOrNull(o['pointId']),
    vmKey: textOrNull(o['vmKey']),
    reason: textOrNull(o['reason']),
    details: typeof details === 'object' && details !== null && !Array.isArray(details) ? (details as Record<string, unknown>) : null,
  };
}

function textOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
