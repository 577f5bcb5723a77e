/**
 * Points served by the product's NBD server for its tests: an image of random, text and zero
 * chunks written as a point (as a backup writes one, through PointWriter), the point's disk
 * exported on a unix socket, and the real NBD clients (nbdcopy, qemu-img, nbdinfo) that read it.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { Writable } from 'stream';
import { NbdServer, type NbdServerOptions } from '../../backend/src/nbd';
import { newPointId, type Manifest, type Repository } from '../../backend/src/repository';
import { PointExport } from '../../backend/src/restore';
import { runTool } from '../../backend/src/util/exec';
import { createLogger, type Logger } from '../../backend/src/util/log';

/** Text-like bytes (compress well, so packs hold frames of both kinds). */
function text(len: number, seed: string): Buffer {
  const line = Buffer.from(`${seed} ${randomBytes(4).toString('hex')} lorem ipsum dolor sit amet\n`);
  const out = Buffer.alloc(len);
  for (let o = 0; o < len; o += line.length) line.copy(out, o, 0, Math.min(line.length, len - o));
  return out;
}

/**
 * `chunks` chunks of `chunkSize` plus a 4 KiB tail: pattern per chunk number: zero where
 * `i % 4 === 1` and for chunks 5..7 (a zero run), text where `i % 4 === 2`, random elsewhere;
 * inside chunk 3 a zero 64 KiB block (data chunks may hold zeroes).
 */
export function mixedImage(chunkSize: number, chunks: number): Buffer {
  const img = Buffer.alloc(chunks * chunkSize + 4096);
  for (let i = 0; i <= chunks; i++) {
    const len = Math.min(chunkSize, img.length - i * chunkSize);
    if (i % 4 === 1 || (i >= 5 && i <= 7)) continue;
    (i % 4 === 2 ? text(len, `chunk ${i}`) : randomBytes(len)).copy(img, i * chunkSize);
  }
  if (chunks > 3) img.fill(0, 3 * chunkSize + 65536, 3 * chunkSize + 131072);
  return img;
}

/** Chunk numbers of `img` that are all zero (what the index stores as zero chunks). */
export function zeroChunks(img: Buffer, chunkSize: number): number[] {
  const out: number[] = [];
  for (let i = 0; i * chunkSize < img.length; i++) {
    const c = img.subarray(i * chunkSize, Math.min(img.length, (i + 1) * chunkSize));
    if (c.every((b) => b === 0)) out.push(i);
  }
  return out;
}

/** A point of vm `nbd-test` with one disk `vda` (alias `system disk`) holding `image`. */
export async function writeImagePoint(repo: Repository, image: Buffer): Promise<Manifest> {
  const at = new Date();
  const w = await repo.beginPoint({ vm: { key: 'nbd-test', name: 'nbd-test' }, pointId: newPointId(at), createdAt: at, parentPointId: null });
  try {
    const d = w.beginDisk({ device: 'vda', virtualSize: image.length });
    for (let i = 0; i < d.count; i++) {
      const start = i * repo.chunkSize;
      // a copy: putChunk may hand the buffer to a worker thread
      await d.putChunk(i, Buffer.from(image.subarray(start, start + d.chunkLength(i))));
    }
    await d.finish();
    return await w.commit({
      disks: [{ device: 'vda', node: 'node-vda', format: 'raw', mode: 'full', reason: 'first-backup', bitmap: 'b', bitmapPersistent: false, bytesRead: image.length, meta: { alias: 'system disk', diskId: 'd1d1d1d1-0000-4000-8000-000000000001' } }],
      consistency: 'crash',
      vmDefinition: null,
    });
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/** Log lines a test can read (pino JSON, parsed). */
export function capturedLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level: 'info', destination: sink }), lines };
}

export interface RunningExport {
  server: NbdServer;
  exported: PointExport;
  socket: string;
  /** nbd+unix URI of the export (libnbd and qemu read it). */
  uri: string;
  close(): Promise<void>;
}

/** Serves disk `disk` of `pointId` on a unix socket in `dir`. */
export async function startExport(
  repo: Repository,
  pointId: string,
  dir: string,
  opts: { disk?: string; log?: Logger; server?: Partial<NbdServerOptions> } = {},
): Promise<RunningExport> {
  const exported = await PointExport.open({ repository: repo, pointId, disk: opts.disk ?? 'vda', holder: 'nbd test', ...(opts.log ? { log: opts.log } : {}) });
  const socket = path.join(dir, `nbd-${randomBytes(4).toString('hex')}.sock`);
  try {
    const server = await NbdServer.start({ exports: [{ name: 'vda', source: exported }], listen: { socket }, ...(opts.log ? { log: opts.log } : {}), ...opts.server });
    return {
      server,
      exported,
      socket,
      uri: `nbd+unix:///vda?socket=${socket}`,
      close: async () => {
        await server.close();
        await exported.close();
      },
    };
  } catch (err) {
    await exported.close();
    throw err;
  }
}

/** The whole export copied by nbdcopy (its own connections, many requests in flight). */
export async function nbdcopyBytes(uri: string, out: string): Promise<Buffer> {
  await runTool('nbdcopy', [uri, out], { timeoutMs: 120_000 });
  try {
    return await fs.readFile(out);
  } finally {
    await fs.rm(out, { force: true });
  }
}

/** The whole export converted by qemu-img (QEMU's NBD client). */
export async function qemuImgBytes(uri: string, out: string): Promise<Buffer> {
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, out], { timeoutMs: 120_000 });
  try {
    return await fs.readFile(out);
  } finally {
    await fs.rm(out, { force: true });
  }
}

/** `qemu-img map --output=json` of the export: [start, length, zero, data] per range. */
export async function qemuMap(uri: string): Promise<Array<{ start: number; length: number; zero: boolean; data: boolean }>> {
  const out = await runTool('qemu-img', ['map', '--output=json', '-f', 'raw', uri], { timeoutMs: 60_000 });
  return (JSON.parse(out) as Array<{ start: number; length: number; zero: boolean; data: boolean }>).map(({ start, length, zero, data }) => ({ start, length, zero, data }));
}

/** `nbdinfo --map` of base:allocation: [offset, length, flags] per line. */
export async function nbdinfoMap(uri: string): Promise<Array<[number, number, number]>> {
  const out = await runTool('nbdinfo', ['--map=base:allocation', uri], { timeoutMs: 60_000 });
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .map((f) => [Number(f[0]), Number(f[1]), Number(f[2])] as [number, number, number]);
}
