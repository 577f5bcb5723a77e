/**
 * Body of one chunk worker thread (loaded as compiled chunkWorker.js by chunkWorkers.ts).
 * CPU work (zero check, SHA-256, zstd) and a chunk's file I/O run on this thread, the I/O with
 * synchronous calls: each async call would hop through libuv's shared threadpool and back
 * (measured ~15 % slower for a 1 GiB full backup, with more CPU). Overlap of one chunk's fsync
 * with another's hashing comes from running more workers than cores (chunkWorkers.ts).
 */
import { createHash } from 'crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, promises as fs, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from 'fs';
import * as path from 'path';
import { parentPort, threadId, workerData } from 'worker_threads';
import * as zstd from 'zstd-napi/binding';
import { AppError } from '../errors';
import { accountName, describeAccount, effectiveUid } from '../util/accounts';
import type { PutResult, ReadResult, WorkerInit, WorkerReply, WorkerRequest } from './chunkProtocol';
import { INCOMPRESSIBLE_RATIO, SAMPLE_BYTES, writeRawFrame } from './zstdFrame';
import { errnoOf, failureReply } from './workerShared';

const init = workerData as WorkerInit;
const cctx = new zstd.CCtx();
cctx.setParameter(zstd.CParameter.compressionLevel, init.zstdLevel);
cctx.setParameter(zstd.CParameter.contentSizeFlag, 1);
const dctx = new zstd.DCtx();
/** A fast compressor for the compressibility trial (zstdFrame.ts). */
const probe = new zstd.CCtx();
probe.setParameter(zstd.CParameter.compressionLevel, 1);
let probeOut = Buffer.alloc(0);
/** Compression output buffers, reused (one per put in flight): saves an mmap, page faults and
 *  munmap per chunk, which on incompressible data cost about as much as zstd itself. */
const outBuffers: Buffer[] = [];

let zeros = Buffer.alloc(0);
let scratch = Buffer.alloc(0);
let tmpSeq = 0;
/** Chunk directories known to exist (saves a mkdir per chunk). */
const knownDirs = new Set<string>();
/** Directories with entries not yet fsynced by this worker. */
let dirtyDirs = new Set<string>();
let syncChain: Promise<void> = Promise.resolve();

function isAllZero(data: Buffer): boolean {
  if (zeros.length < data.length) zeros = Buffer.alloc(data.length);
  return data.equals(zeros.subarray(0, data.length));
}

/** Two samples (start and middle) that both fail to shrink mark the chunk as incompressible. */
function looksIncompressible(data: Buffer): boolean {
  if (data.length < 4 * SAMPLE_BYTES) return false;
  const half = SAMPLE_BYTES / 2;
  const bound = zstd.compressBound(half);
  if (probeOut.length < bound) probeOut = Buffer.allocUnsafeSlow(bound);
  for (const start of [0, Math.floor(data.length / 2)]) {
    const n = probe.compress2(probeOut, data.subarray(start, start + half));
    if (n < half * INCOMPRESSIBLE_RATIO) return false;
  }
  return true;
}

function chunkDir(hex: string): string {
  return path.join(init.chunksDir, hex.slice(0, 2), hex.slice(2, 4));
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * A chunk that is already stored gets reused: its mtime is set to now first, so that garbage
 * collection, which only removes unreferenced chunks older than its cutoff and re-checks the
 * mtime after moving a chunk aside, cannot remove it under this writer (FORMAT.md §9, §14).
 * `absent`: it must be written. `foreign`: it exists but this account may not set its times
 * (another account's file): the writer stores its own copy over it (see put).
 */
function refresh(file: string): 'refreshed' | 'absent' | 'foreign' {
  const now = new Date();
  try {
    utimesSync(file, now, now);
    return 'refreshed';
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return 'absent';
    if (code === 'EPERM' || code === 'EACCES' || code === 'EROFS') return exists(file) ? 'foreign' : 'absent';
    throw err;
  }
}

/**
 * Puts our copy of a chunk (same content, fsynced, fresh mtime) in place of another account's
 * file by one rename: a reader opens either the old file or ours, both whole and identical, and
 * garbage collection sees our mtime in any order of its scan, rename aside and re-check.
 */
function replace(tmp: string, final: string): void {
  try {
    renameSync(tmp, final);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw notReplaceable(final, err);
    throw err;
  }
}

function notReplaceable(file: string, cause: unknown): AppError {
  let ownerUid: number | null = null;
  try {
    ownerUid = statSync(file).uid;
  } catch {
    // gone meanwhile: the message still names the file
  }
  const owner = ownerUid === null ? 'another account' : describeAccount(ownerUid);
  const runAs = ownerUid === null ? 'the account that owns the repository' : accountName(ownerUid);
  return new AppError(
    'REPO_PERMISSION_DENIED',
    `chunk file ${file} belongs to ${owner}: this writer (${describeAccount(effectiveUid())}) can neither refresh its modification time nor replace it ` +
      `with its own copy, so garbage collection could remove it under this backup; run backups as ${runAs} (sudo -u ${runAs} …), or let both accounts write the chunk directories`,
    { cause, details: { file, ownerUid, owner } },
  );
}

/** mkdir that records which parent got a new entry, so that parent is fsynced too. */
function mkdirNoted(dir: string): void {
  try {
    mkdirSync(dir);
    dirtyDirs.add(path.dirname(dir));
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err;
  }
}

function ensureChunkDir(dir: string, force = false): void {
  if (!force && knownDirs.has(dir)) return;
  mkdirNoted(path.dirname(dir));
  mkdirNoted(dir);
  knownDirs.add(dir);
}

/** link() refuses to replace an existing chunk: "stored once, never rewritten" holds even when
 *  two writers race on the same content, and tells us exactly which of them stored it. */
function publish(tmp: string, final: string, dir: string): boolean {
  try {
    linkSync(tmp, final);
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EEXIST') return false;
    if (code === 'ENOENT') {
      ensureChunkDir(dir, true);
      return publish(tmp, final, dir);
    }
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EMLINK' || code === 'ENOSYS') {
      // Filesystem without hard links: rename (which may replace an identical copy).
      renameSync(tmp, final);
      return true;
    }
    throw err;
  }
}

function put(data: Buffer, tmpDir: string): PutResult {
  if (isAllZero(data)) return { zero: true };
  const digest = createHash('sha256').update(data).digest('hex');
  const dir = chunkDir(digest);
  const final = path.join(dir, digest);
  const found = refresh(final);
  // Even a chunk someone else stored gets its directory fsynced before our manifest refers to it.
  if (found === 'refreshed') {
    dirtyDirs.add(dir);
    return { zero: false, digest, stored: false, bytes: 0 };
  }
  const bound = zstd.compressBound(data.length);
  let out = outBuffers.pop();
  if (!out || out.length < bound) out = Buffer.allocUnsafeSlow(bound);
  const tmp = path.join(tmpDir, `${digest}.${threadId}.${tmpSeq++}`);
  let packedLength: number;
  try {
    packedLength = looksIncompressible(data) ? writeRawFrame(data, out) : cctx.compress2(out, data);
    const fd = openSync(tmp, 'wx', 0o444);
    try {
      for (let off = 0; off < packedLength; ) off += writeSync(fd, out, off, packedLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } finally {
    outBuffers.push(out);
  }
  let stored: boolean;
  try {
    ensureChunkDir(dir);
    if (found === 'foreign') {
      // the content was already stored: not new, but the file is ours from now on
      replace(tmp, final);
      stored = false;
    } else {
      stored = publish(tmp, final, dir);
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  dirtyDirs.add(dir);
  return { zero: false, digest, stored, bytes: stored ? packedLength : 0 };
}

/** Reads and fully checks one chunk into `out` (exactly `length` bytes). */
function load(digest: string, length: number, out: Buffer): ReadResult {
  let packed: Buffer;
  try {
    packed = readFileSync(path.join(chunkDir(digest), digest));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { status: 'missing', message: `chunk ${digest} is missing` };
    throw err;
  }
  let size: number | null;
  let n: number;
  try {
    size = zstd.getFrameContentSize(packed);
    if (size !== length) return { status: 'corrupt', message: `chunk ${digest} holds ${String(size)} bytes, expected ${length}` };
    n = dctx.decompress(out, packed);
  } catch (err) {
    return { status: 'corrupt', message: `chunk ${digest} does not decompress: ${(err as Error).message}` };
  }
  if (n !== length) return { status: 'corrupt', message: `chunk ${digest} decompressed to ${n} bytes, expected ${length}` };
  const actual = createHash('sha256').update(out).digest('hex');
  if (actual !== digest) return { status: 'corrupt', message: `chunk ${digest} content hashes to ${actual}` };
  return { status: 'ok' };
}

async function sync(all: boolean): Promise<void> {
  const dirs = dirtyDirs;
  dirtyDirs = new Set();
  if (all) for (const d of await listAllChunkDirs()) dirs.add(d);
  // Chained: a sync must also wait for the one in progress, which may hold dirs we dirtied.
  const p = syncChain.then(() => fsyncAll([...dirs]));
  syncChain = p.catch(() => undefined);
  return p;
}

async function fsyncAll(dirs: string[]): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < dirs.length) {
      const dir = dirs[next++] as string;
      const fh = await fs.open(dir, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, dirs.length) }, lane));
}

async function listAllChunkDirs(): Promise<string[]> {
  const out = [init.chunksDir];
  for (const a of await fs.readdir(init.chunksDir, { withFileTypes: true })) {
    if (!a.isDirectory()) continue;
    const ad = path.join(init.chunksDir, a.name);
    out.push(ad);
    for (const b of await fs.readdir(ad, { withFileTypes: true })) if (b.isDirectory()) out.push(path.join(ad, b.name));
  }
  return out;
}

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(msg, transfer);
}

async function handle(req: WorkerRequest): Promise<void> {
  try {
    switch (req.op) {
      case 'put': {
        const data = Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength);
        const result: PutResult = put(data, req.tmpDir);
        result.returned = req.data;
        reply({ id: req.id, ok: true, result }, [req.data.buffer as ArrayBuffer]);
        return;
      }
      case 'read': {
        // Its own ArrayBuffer, so it can be transferred back without a copy.
        const out = Buffer.from(new ArrayBuffer(req.length));
        const r = load(req.digest, req.length, out);
        if (r.status === 'ok') {
          reply({ id: req.id, ok: true, result: { status: 'ok', data: out } }, [out.buffer]);
        } else {
          reply({ id: req.id, ok: true, result: r });
        }
        return;
      }
      case 'check': {
        if (scratch.length < req.length) scratch = Buffer.alloc(req.length);
        reply({ id: req.id, ok: true, result: load(req.digest, req.length, scratch.subarray(0, req.length)) });
        return;
      }
      case 'sync':
        await sync(req.all === true);
        reply({ id: req.id, ok: true, result: null });
        return;
      case 'crash':
        process.exit(70);
    }
  } catch (err) {
    reply(failureReply(req.id, err));
  }
}

parentPort?.on('message', (req: WorkerRequest) => {
  void handle(req);
});
