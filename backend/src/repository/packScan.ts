/**
 * Format 2's files as they are on disk, read whole, for the two whole-repository passes: the
 * garbage collection (gcPacks.ts) and verify (verifyPacks.ts). A snapshot of the repository
 * index — every index file, which ones others supersede, the packs and blobs the current ones
 * name — and the pack files under packs/. Unlike RepoIndex (the readers' lookup table) it keeps
 * the entries per pack and the names of the files read.
 */
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { isErrno, readdirOrEmpty } from './atomicFile';
import { isHexDigest, packPath, PACKS_DIR } from './layout';
import type { PackEntry } from './pack';
import { listIndexFiles, readIndexFile } from './repoIndex';

export interface IndexSnapshot {
  /** Every index file read (superseded ones included). */
  files: string[];
  /** Files another file read supersedes (their content is in that file). */
  superseded: Set<string>;
  /** Pack name → its blobs, from the files no other file supersedes (one entry per offset). */
  packs: Map<string, PackEntry[]>;
  /** Files that could not be read (damaged), with why. */
  problems: Map<string, string>;
}

/** Reads every index file under index/. A file that vanished meanwhile (a collection replaced
 *  it) is left out; one that cannot be read is listed in `problems`. */
export async function readIndexSnapshot(root: string): Promise<IndexSnapshot> {
  const files: string[] = [];
  const problems = new Map<string, string>();
  const contents: Array<Awaited<ReturnType<typeof readIndexFile>>> = [];
  for (const name of await listIndexFiles(root)) {
    try {
      contents.push(await readIndexFile(root, name));
      files.push(name);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue;
      if (!isAppError(err, 'REPO_CORRUPT')) throw new AppError('REPO_IO_ERROR', `reading repository index file ${name} failed`, { cause: err });
      problems.set(name, err.message);
    }
  }
  const superseded = new Set<string>();
  for (const c of contents) for (const s of c.supersedes) superseded.add(s);
  const packs = new Map<string, PackEntry[]>();
  const seen = new Map<string, Set<number>>();
  contents.forEach((c, i) => {
    if (superseded.has(files[i] as string)) return;
    for (const p of c.packs) {
      let list = packs.get(p.name);
      let offsets = seen.get(p.name);
      if (!list || !offsets) {
        list = [];
        offsets = new Set();
        packs.set(p.name, list);
        seen.set(p.name, offsets);
      }
      for (const e of p.entries) {
        if (offsets.has(e.offset)) continue;
        offsets.add(e.offset);
        list.push(e);
      }
    }
  });
  for (const s of superseded) problems.delete(s); // a damaged file another one replaces is harmless
  return { files, superseded, packs, problems };
}

export interface PackFile {
  name: string;
  file: string;
}

/** Every pack file under packs/<ab>/ (names that are not pack names are not listed). */
export async function listPackFiles(root: string): Promise<PackFile[]> {
  const out: PackFile[] = [];
  const dir = path.join(root, PACKS_DIR);
  for (const ab of await readdirOrEmpty(dir)) {
    if (!/^[0-9a-f]{2}$/.test(ab)) continue;
    for (const name of await readdirOrEmpty(path.join(dir, ab))) {
      if (isHexDigest(name) && name.startsWith(ab)) out.push({ name, file: packPath(root, name) });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}


