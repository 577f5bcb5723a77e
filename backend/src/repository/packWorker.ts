/**
 * Body of one format-2 worker thread (loaded as compiled packWorker.js by the worker pool). It
 * does a chunk's CPU work — zero check, id, compression, encryption — and writes the chunk into
 * a pack it owns for the writing session, with synchronous calls (measured: handing stored bytes
 * back to the main thread to write cost more CPU in copies, messages and garbage collection
 * than the hashing itself). The main thread decides between hashing and storing whether the
 * content is new, so known content is never compressed. It also reads blobs back (pread,
 * open, decompress, check) for restores, verify and the garbage collection's repacking.
 */
import { closeSync, openSync, readSync } from 'fs';
import { parentPort, workerData } from 'worker_threads';
import { AppError } from '../errors';
import { BlobCodec } from './blobCodec';
import { blobCrypt } from './blobCrypt';
import type { PackSessionRef, PackWorkerInit, PackWorkerReply, PackWorkerRequest, ReadResult, SealedPackInfo, StoreResult } from './chunkProtocol';
import { PackFile, type BlobType, type FinishedPack } from './pack';
import { errnoOf, failureReply } from './workerShared';

const init = workerData as PackWorkerInit;
const codec = new BlobCodec(init.zstdLevel, blobCrypt(init.key ?? null));
let scratch = Buffer.alloc(0);
/** Chunks hashed and not yet stored or dropped, by the hash request's id. */
const held = new Map<number, { data: Uint8Array; id: Buffer }>();
/** The open pack of each session this worker stores for. */
const packs = new Map<string, PackFile>();

function sealedInfo(p: FinishedPack): SealedPackInfo {
  return {
    tmpFile: p.tmpFile,
    name: p.name,
    entries: p.entries.map((e) => ({ id: e.id.toString('hex'), type: e.type, offset: e.offset, storedLength: e.storedLength, plainLength: e.plainLength })),
  };
}

/** Appends to the session's pack (a new one if none is open); seals it once it is full. */
function append(to: PackSessionRef, id: Buffer, type: number, stored: Buffer[], plainLength: number): StoreResult {
  let pack = packs.get(to.session);
  if (!pack) {
    pack = PackFile.create(to.tmpDir);
    packs.set(to.session, pack);
  }
  pack.append(id, type as BlobType, stored, plainLength);
  const result: StoreResult = { id: id.toString('hex'), storedLength: pack.entries[pack.entries.length - 1]?.storedLength ?? 0 };
  if (pack.size >= to.packSize) {
    packs.delete(to.session);
    result.sealed = sealedInfo(pack.finish());
  }
  return result;
}

function readStored(req: { file: string; offset: number; storedLength: number; blob: string }): Buffer | ReadResult {
  const what = `blob ${req.blob}`;
  const stored = Buffer.allocUnsafe(req.storedLength);
  let fd: number;
  try {
    fd = openSync(req.file, 'r');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { status: 'missing', message: `${what}: its pack ${req.file} is missing` };
    throw err;
  }
  try {
    let n = 0;
    while (n < req.storedLength) {
      const r = readSync(fd, stored, n, req.storedLength - n, req.offset + n);
      if (r === 0) return { status: 'corrupt', message: `${what}: pack ${req.file} ends before the blob (truncated)` };
      n += r;
    }
  } finally {
    closeSync(fd);
  }
  return stored;
}

function load(req: { file: string; offset: number; storedLength: number; blob: string; length: number }, out: Buffer): ReadResult & { stored?: Buffer } {
  const stored = readStored(req);
  if (!Buffer.isBuffer(stored)) return stored;
  const st = codec.decode(stored, Buffer.from(req.blob, 'hex'), req.length, out, `blob ${req.blob}`);
  return st.ok ? { status: 'ok', stored } : { status: 'corrupt', message: st.message };
}

function take(token: number): { data: Uint8Array; id: Buffer } {
  const h = held.get(token);
  if (!h) throw new AppError('REPO_IO_ERROR', `chunk worker holds no chunk ${token}`);
  held.delete(token);
  return h;
}

function reply(msg: PackWorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(msg, transfer);
}

function handle(req: PackWorkerRequest): void {
  try {
    switch (req.op) {
      case 'hash': {
        const data = Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength);
        if (codec.isAllZero(data)) {
          reply({ id: req.id, ok: true, result: { zero: true, returned: req.data } }, [req.data.buffer as ArrayBuffer]);
          return;
        }
        const id = codec.id(data);
        held.set(req.id, { data: req.data, id });
        reply({ id: req.id, ok: true, result: { zero: false, id: id.toString('hex'), token: req.id } });
        return;
      }
      case 'store': {
        const h = take(req.token);
        const data = Buffer.from(h.data.buffer, h.data.byteOffset, h.data.byteLength);
        const result = append(req.to, h.id, req.type, codec.encode(h.id, data), data.length);
        result.returned = h.data;
        reply({ id: req.id, ok: true, result }, [h.data.buffer as ArrayBuffer]);
        return;
      }
      case 'drop': {
        const h = take(req.token);
        reply({ id: req.id, ok: true, result: { returned: h.data } }, [h.data.buffer as ArrayBuffer]);
        return;
      }
      case 'storeBlob': {
        const data = Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength);
        const id = codec.id(data);
        reply({ id: req.id, ok: true, result: append(req.to, id, req.type, codec.encode(id, data), data.length) });
        return;
      }
      case 'flush': {
        const pack = packs.get(req.session);
        packs.delete(req.session);
        if (pack && pack.entries.length > 0) {
          reply({ id: req.id, ok: true, result: { sealed: sealedInfo(pack.finish()) } });
          return;
        }
        pack?.discard();
        reply({ id: req.id, ok: true, result: {} });
        return;
      }
      case 'end': {
        packs.get(req.session)?.discard();
        packs.delete(req.session);
        reply({ id: req.id, ok: true, result: null });
        return;
      }
      case 'readAt': {
        const out = Buffer.from(req.into?.byteLength === req.length ? req.into : new ArrayBuffer(req.length));
        const r = load(req, out);
        if (r.status === 'ok') reply({ id: req.id, ok: true, result: { status: 'ok', data: out } }, [out.buffer]);
        else reply({ id: req.id, ok: true, result: { status: r.status, ...(r.message ? { message: r.message } : {}) } });
        return;
      }
      case 'checkAt': {
        if (scratch.length < req.length) scratch = Buffer.alloc(req.length);
        const r = load(req, scratch.subarray(0, req.length));
        reply({ id: req.id, ok: true, result: { status: r.status, ...(r.message ? { message: r.message } : {}) } });
        return;
      }
      case 'crash':
        process.exit(70);
    }
  } catch (err) {
    reply(failureReply(req.id, err));
  }
}

parentPort?.on('message', (req: PackWorkerRequest) => handle(req));
