/**
 * What verify does about the damage it found (FORMAT.md §11, §20), unless asked not to: corrupt
 * chunk files go to quarantine/ (format 2: corrupt blob copies are recorded there), so the next
 * backup that reads the content stores it again; damaged points get a mark (damaged/<id>.json:
 * the next backup of their VM copies the damaged disks whole), points found whole again lose
 * theirs. Each change is written to the audit log.
 */
import { appendAudit, type AuditInput } from './audit';
import { clearDamageMark, MAX_MARK_PROBLEMS, quarantineChunk, readDamageMark, writeDamageMark } from './damage';
import { pointDir } from './layout';
import { pathExists } from './points';
import type { DamageMark, VerifyReport } from './types';

/** How corrupt data is taken out of use: format 1 moves chunk files (below), format 2 records
 *  blob copies (verifyPackRepairs.ts). Returns the ids quarantined and their audit records. */
export type Quarantiner = (report: VerifyReport, actor: string) => Promise<{ quarantined: string[]; audit: AuditInput[] }>;

export async function applyVerifyRepairs(root: string, report: VerifyReport, actor: string, quarantine: Quarantiner = (r, a) => quarantineChunkFiles(root, r, a)): Promise<VerifyReport> {
  const q = await quarantine(report, actor);
  const audit: AuditInput[] = [...q.audit];
  const quarantined = q.quarantined;
  const marked: string[] = [];
  const cleared: string[] = [];
  const now = new Date().toISOString();
  for (const r of report.points) {
    if (r.status === 'ok') {
      if (await clearDamageMark(root, r.pointId)) {
        cleared.push(r.pointId);
        audit.push({ actor, action: 'damage-clear', pointId: r.pointId, vmKey: r.vmKey, reason: 'verify: every chunk is present and intact again' });
      }
      continue;
    }
    if (!(await pathExists(pointDir(root, r.pointId)))) continue; // deleted while verify ran
    const prev = await readDamageMark(root, r.pointId);
    const problems = report.problems.filter((p) => p.pointId === r.pointId);
    const mark: DamageMark = {
      pointId: r.pointId,
      vmKey: r.vmKey,
      markedAt: prev?.markedAt || now,
      verifiedAt: now,
      devices: r.damagedDevices,
      problems: problems.slice(0, MAX_MARK_PROBLEMS).map((p) => ({ device: p.device, chunk: p.chunk, offset: p.offset, kind: p.kind })),
    };
    await writeDamageMark(root, mark);
    if (!prev) {
      marked.push(r.pointId);
      audit.push({
        actor,
        action: 'damage-mark',
        pointId: r.pointId,
        vmKey: r.vmKey,
        reason: `verify: ${problems.length} problem(s)`,
        details: { devices: mark.devices, kinds: [...new Set(problems.map((p) => p.kind))] },
      });
    }
  }
  await appendAudit(root, audit);
  return { ...report, quarantined, marked, cleared };
}

async function quarantineChunkFiles(root: string, report: VerifyReport, actor: string): Promise<{ quarantined: string[]; audit: AuditInput[] }> {
  const audit: AuditInput[] = [];
  const quarantined: string[] = [];
  const corrupt = new Set(report.problems.filter((p) => p.kind === 'chunk-corrupt' && p.chunk !== null).map((p) => p.chunk as string));
  for (const hex of [...corrupt].sort()) {
    const name = await quarantineChunk(root, hex);
    if (name === null) continue;
    quarantined.push(hex);
    audit.push({ actor, action: 'chunk-quarantine', reason: 'verify: chunk content does not match its digest', details: { chunk: hex, file: name } });
  }
  return { quarantined, audit };
}
