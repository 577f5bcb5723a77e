/**
 * What verify repairs in a format-2 repository (FORMAT.md §20), before the damage marks
 * (verifyRepairs.ts): a damaged repository index file is replaced by one rebuilt from the tables
 * of the packs no readable index file names (under the gc lock, so that no collection judges
 * those packs meanwhile), and every blob copy found corrupt is recorded in quarantine/ — checked
 * once more first — so that no process reads or deduplicates against it again and the next
 * backup that reads the content stores a good copy.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { isAppError } from '../errors';
import { fsyncDir, isErrno } from './atomicFile';
import type { AuditInput } from './audit';
import type { ReadResult } from './chunkProtocol';
import { GC_LOCK_FILE, INDEX_DIR, indexFilePath, LOCKS_DIR, packPath, QUARANTINE_DIR } from './layout';
import { acquireRepoLock, type VmLock } from './locks';
import { readPackTail, type PackEntry } from './pack';
import { quarantineBlob } from './packQuarantine';
import { listPackFiles, readIndexSnapshot } from './packScan';
import type { PackStore } from './packStore';
import { writeIndexFile } from './repoIndex';
import type { VerifyReport } from './types';
import type { Quarantiner } from './verifyRepairs';

export function packRepairs(root: string, store: PackStore): Quarantiner {
  return async (report, actor) => {
    const audit = await rebuildIndex(root, report, actor);
    if (audit.length > 0) await store.index.refresh();
    const q = await quarantineCopies(root, store, report, actor);
    await store.index.refresh(); // this process skips them at once
    return { quarantined: q.quarantined, audit: [...audit, ...q.audit] };
  };
}

/** The (blob, pack) pairs the report found corrupt: chunks, index nodes, blobs of bad packs. */
function suspects(report: VerifyReport): Map<string, { blob: string; pack: string }> {
  const out = new Map<string, { blob: string; pack: string }>();
  const add = (blob: string | null | undefined, pack: string | undefined): void => {
    if (blob && pack) out.set(`${blob}.${pack}`, { blob, pack });
  };
  for (const p of report.problems) {
    if (p.kind === 'chunk-corrupt') add(p.chunk, p.pack);
    else if (p.kind === 'index-corrupt') add(p.node, p.pack);
    else if (p.kind === 'pack-corrupt' || p.kind === 'pack-truncated') for (const b of p.blobs ?? []) add(b, p.pack);
  }
  return out;
}

async function quarantineCopies(root: string, store: PackStore, report: VerifyReport, actor: string): Promise<{ quarantined: string[]; audit: AuditInput[] }> {
  const quarantined = new Set<string>();
  const audit: AuditInput[] = [];
  for (const { blob, pack } of [...suspects(report).values()].sort((a, b) => (a.blob < b.blob ? -1 : 1))) {
    const id = Buffer.from(blob, 'hex');
    const loc = store.index.find(id).find((l) => l.pack === pack);
    // a pack no index file names: nothing reads it, nothing to take out of use
    if (!loc || store.index.isQuarantined(id, pack)) continue;
    const r = await store
      .workers()
      .run<ReadResult>({ op: 'checkAt', file: packPath(root, pack), offset: loc.offset, storedLength: loc.storedLength, blob, length: loc.plainLength }, `verify: checking blob ${blob} of pack ${pack}`);
    if (r.status !== 'corrupt') continue; // intact after all, or its pack is missing (nothing to record)
    const name = await quarantineBlob(root, blob, pack, r.message ?? 'content does not match its id');
    if (name === null) continue;
    quarantined.add(blob);
    audit.push({ actor, action: 'chunk-quarantine', reason: 'verify: blob content does not match its id', details: { chunk: blob, pack, file: name } });
  }
  return { quarantined: [...quarantined], audit };
}

/**
 * Replaces the damaged index files by one naming the packs no readable file names, read from
 * their own tables; the damaged files go to quarantine/ (`index-<name>`). Skipped while a
 * collection holds the gc lock (the next verify does it).
 */
async function rebuildIndex(root: string, report: VerifyReport, actor: string): Promise<AuditInput[]> {
  if (!report.problems.some((p) => p.kind === 'repo-index-corrupt')) return [];
  let lock: VmLock;
  try {
    lock = await acquireRepoLock(path.join(root, LOCKS_DIR, GC_LOCK_FILE), 'gc');
  } catch (err) {
    if (isAppError(err, 'REPO_LOCKED')) return [];
    throw err;
  }
  try {
    const snap = await readIndexSnapshot(root);
    const bad = [...snap.problems.keys()];
    if (bad.length === 0) return [];
    const packs: Array<{ name: string; entries: PackEntry[] }> = [];
    const unreadable: string[] = [];
    for (const p of await listPackFiles(root)) {
      if (snap.packs.has(p.name)) continue;
      try {
        const tail = await readPackTail(p.file, `pack ${p.name}`);
        if (tail.entries.length > 0) packs.push({ name: p.name, entries: tail.entries });
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        if (!isAppError(err, 'REPO_CORRUPT')) throw err;
        unreadable.push(p.name);
      }
    }
    // a pack whose own table cannot be read either: the damaged index file may be the only
    // record of where its blobs are, so it stays (the collection keeps refusing; nothing is lost)
    if (unreadable.length > 0) return [];
    const rebuilt = await writeIndexFile(root, { packs, supersedes: bad });
    const qdir = path.join(root, QUARANTINE_DIR);
    await fs.mkdir(qdir, { recursive: true });
    for (const b of bad) await fs.rename(indexFilePath(root, b), path.join(qdir, `index-${b}`)).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
    await fsyncDir(path.join(root, INDEX_DIR));
    await fsyncDir(qdir);
    return bad.map((b) => ({
      actor,
      action: 'chunk-quarantine' as const,
      reason: 'verify: repository index file damaged; replaced by one rebuilt from the tables of the packs no other index file names',
      details: { indexFile: b, file: `index-${b}`, rebuiltAs: rebuilt, packs: packs.length, blobs: packs.reduce((n, p) => n + p.entries.length, 0), unreadablePacks: unreadable },
    }));
  } finally {
    await lock.release();
  }
}
