/**
 * Repacking, for the format-2 garbage collection (FORMAT.md §20): the live blobs of packs that
 * are mostly garbage are copied — their stored bytes as they are, so neither the key nor the
 * compression is needed — into new packs written in the collection's staging area and sealed
 * into packs/. Each blob is checked first (decoded and its id recomputed, in the pack workers):
 * a corrupt one is not copied, and its pack is then left as it is, for verify to report and
 * quarantine; the collection never destroys a blob verify has not judged. A blob the
 * collection keeps an intact copy of elsewhere is not copied again.
 */
import { promises as fs } from 'fs';
import { AppError } from '../errors';
import type { ReadResult } from './chunkProtocol';
import { packPath } from './layout';
import { PackFile, publishPack, type PackEntry, type SealedPack } from './pack';
import type { PackStore } from './packStore';

export interface RepackCandidate {
  name: string;
  /** Its live blobs (referenced, not quarantined). */
  live: PackEntry[];
}

export interface RepackInput {
  root: string;
  store: PackStore;
  /** Where new packs are written before they are sealed (the collection's own). */
  stagingDir: string;
  packSize: number;
  candidates: readonly RepackCandidate[];
  /** Copies of blobs (by id key) in packs the collection keeps. */
  elsewhere: ReadonlyMap<string, ReadonlyArray<{ pack: string; entry: PackEntry }>>;
}

export interface RepackResult {
  /** Candidates every live blob of which is now in a new pack or kept elsewhere. */
  repacked: Set<string>;
  /** Live blobs that failed their check (their packs are not in `repacked`). */
  corrupt: Array<{ blob: string; pack: string; message: string }>;
  written: SealedPack[];
  /** Stored bytes copied. */
  bytesCopied: number;
}

export async function repack(input: RepackInput): Promise<RepackResult> {
  const out: RepackResult = { repacked: new Set(), corrupt: [], written: [], bytesCopied: 0 };
  const copied = new Set<string>();
  const intactElsewhere = new Map<string, boolean>();
  // written with synchronous calls on this thread (as the upgrade's packer does): the checks run
  // in the worker pool, an append of one blob is short
  let file: PackFile | undefined;
  const seal = async (f: PackFile): Promise<void> => {
    const done = f.finish();
    await publishPack(input.root, done);
    input.store.mirror?.packPublished(done.name, null);
    out.written.push({ name: done.name, entries: done.entries, bytes: done.bytes });
  };
  try {
    for (const cand of input.candidates) {
      const toCopy: PackEntry[] = [];
      const bad: RepackResult['corrupt'] = [];
      for (const e of cand.live) {
        const k = e.id.toString('latin1');
        if (copied.has(k)) continue;
        if (await keptElsewhere(input, k, intactElsewhere)) continue;
        const r = await check(input, cand.name, e);
        if (r.status === 'ok') toCopy.push(e);
        else bad.push({ blob: e.id.toString('hex'), pack: cand.name, message: r.message ?? `blob ${e.id.toString('hex')} is ${r.status}` });
      }
      if (bad.length > 0) {
        out.corrupt.push(...bad);
        continue;
      }
      await input.store.mirror?.ensurePack(cand.name);
      const fh = await fs.open(packPath(input.root, cand.name), 'r').catch((err: unknown) => {
        throw new AppError('REPO_IO_ERROR', `gc: opening pack ${cand.name} to repack it failed`, { cause: err });
      });
      try {
        for (const e of toCopy) {
          const stored = await readStored(fh, e, cand.name);
          file ??= PackFile.create(input.stagingDir);
          file.append(e.id, e.type, [stored], e.plainLength);
          copied.add(e.id.toString('latin1'));
          out.bytesCopied += e.storedLength;
          if (file.size >= input.packSize) {
            const full = file;
            file = undefined;
            await seal(full);
          }
        }
      } finally {
        await fh.close();
      }
      out.repacked.add(cand.name);
    }
    if (file && file.entries.length > 0) {
      const last = file;
      file = undefined;
      await seal(last);
    }
  } finally {
    file?.discard();
  }
  return out;
}

/** Whether a pack the collection keeps holds an intact copy (checked once per blob). */
async function keptElsewhere(input: RepackInput, k: string, memo: Map<string, boolean>): Promise<boolean> {
  const known = memo.get(k);
  if (known !== undefined) return known;
  let ok = false;
  for (const other of input.elsewhere.get(k) ?? []) {
    if ((await check(input, other.pack, other.entry)).status === 'ok') {
      ok = true;
      break;
    }
  }
  memo.set(k, ok);
  return ok;
}

async function check(input: RepackInput, pack: string, e: PackEntry): Promise<ReadResult> {
  const hex = e.id.toString('hex');
  await input.store.mirror?.ensurePack(pack);
  return input.store
    .workers()
    .run<ReadResult>({ op: 'checkAt', file: packPath(input.root, pack), offset: e.offset, storedLength: e.storedLength, blob: hex, length: e.plainLength }, `gc: checking blob ${hex} of pack ${pack}`);
}

async function readStored(fh: fs.FileHandle, e: PackEntry, pack: string): Promise<Buffer> {
  const buf = Buffer.alloc(e.storedLength);
  for (let n = 0; n < buf.length; ) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, e.offset + n);
    if (bytesRead === 0) throw new AppError('REPO_IO_ERROR', `gc: pack ${pack} ends before blob ${e.id.toString('hex')} (it was checked a moment ago)`);
    n += bytesRead;
  }
  return buf;
}
