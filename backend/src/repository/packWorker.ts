/**
 * Body of one format-2 worker thread (loaded as compiled packWorker.js by the worker pool): the
 * CPU work of a blob — zero check, id, compression, encryption — and the reads of blobs from
 * pack files (pread, open, decompress, check). The main thread appends what it returns to the
 * pack it is writing, so a pack is written sequentially by one owner.
 */
import { closeSync, openSync, readSync } from 'fs';
import { parentPort, workerData } from 'worker_threads';
import { isAppError } from '../errors';
import { BlobCodec } from './blobCodec';
import { blobCrypt } from './blobCrypt';
import type { PackWorkerInit, PackWorkerReply, PackWorkerRequest, ReadResult, SealResult } from './chunkProtocol';

const init = workerData as PackWorkerInit;
const codec = new BlobCodec(init.zstdLevel, blobCrypt(init.key ?? null));
let scratch = Buffer.alloc(0);

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
}

function seal(data: Buffer): SealResult {
  if (codec.isAllZero(data)) return { zero: true };
  const id = codec.id(data);
  let stored = codec.encode(id, data);
  // transferred to the main thread: it must own its whole memory (never a slice of a pool)
  if (stored.byteOffset !== 0 || stored.buffer.byteLength !== stored.length) {
    const own = Buffer.from(new ArrayBuffer(stored.length));
    stored.copy(own);
    stored = own;
  }
  return { zero: false, id: id.toString('hex'), stored, plainLength: data.length };
}

function load(req: { file: string; offset: number; storedLength: number; blob: string; length: number }, out: Buffer): ReadResult {
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
  const st = codec.decode(stored, Buffer.from(req.blob, 'hex'), req.length, out, what);
  return st.ok ? { status: 'ok' } : { status: 'corrupt', message: st.message };
}

function reply(msg: PackWorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(msg, transfer);
}

function handle(req: PackWorkerRequest): void {
  try {
    switch (req.op) {
      case 'seal': {
        const data = Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength);
        const result = seal(data);
        result.returned = req.data;
        const transfer = [req.data.buffer as ArrayBuffer];
        if (!result.zero) transfer.push(result.stored.buffer as ArrayBuffer);
        reply({ id: req.id, ok: true, result }, transfer);
        return;
      }
      case 'readAt': {
        const out = Buffer.from(new ArrayBuffer(req.length));
        const r = load(req, out);
        if (r.status === 'ok') reply({ id: req.id, ok: true, result: { status: 'ok', data: out } }, [out.buffer]);
        else reply({ id: req.id, ok: true, result: r });
        return;
      }
      case 'checkAt': {
        if (scratch.length < req.length) scratch = Buffer.alloc(req.length);
        reply({ id: req.id, ok: true, result: load(req, scratch.subarray(0, req.length)) });
        return;
      }
      case 'crash':
        process.exit(70);
    }
  } catch (err) {
    const coded = isAppError(err) ? { code: err.code, ...(err.details ? { details: err.details } : {}) } : {};
    reply({ id: req.id, ok: false, error: { message: (err as Error).message ?? String(err), ...(errnoOf(err) ? { errno: errnoOf(err) } : {}), ...coded } });
  }
}

parentPort?.on('message', (req: PackWorkerRequest) => handle(req));
