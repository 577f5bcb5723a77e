/**
 * The product's NBD server against bad input, byte by byte through a raw socket: broken and
 * unknown options, oversized lengths, writes on the read-only export, requests out of bounds,
 * pipelined requests, bad magic; and a point with a damaged chunk. Each gets the protocol's
 * answer, and the server keeps serving everyone else.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NbdClient } from '../../backend/src/nbd';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EIO,
  NBD_EOVERFLOW,
  NBD_EPERM,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR_BIT,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
} from '../../backend/src/nbd/constants';
import type { Repository } from '../../backend/src/repository';
import { runTool } from '../../backend/src/util/exec';
import { expectSameBytes } from '../helpers/backupFixture';
import { capturedLogger, mixedImage, nbdcopyBytes, startExport, writeImagePoint, type RunningExport } from '../helpers/exportFixture';
import { RawNbd } from '../helpers/nbdRaw';
import { initRepo, V2 } from '../helpers/repoFormats';
import { requireTools } from '../helpers/tools';
import { blobLocation, flipByte } from './packFixture';

requireTools('nbdcopy', 'nbdinfo');

let tmp: string;
let repo: Repository;
let img: Buffer;
let cs: number;
let running: RunningExport;
const captured = capturedLogger();

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-nbdhostile-'));
  repo = await initRepo(path.join(tmp, 'repo'), V2);
  cs = repo.chunkSize;
  img = mixedImage(cs, 12);
  const m = await writeImagePoint(repo, img);
  running = await startExport(repo, m.pointId, tmp, { log: captured.log });
});
afterAll(async () => {
  await running?.close();
  await repo?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** The export still serves a whole, correct copy to a well-behaved client. */
async function stillServing(): Promise<void> {
  expectSameBytes(await nbdcopyBytes(running.uri, path.join(tmp, `check-${Date.now()}.raw`)), img, 'nbdcopy after the hostile client');
}

function errnoOf(chunk: { type: number; payload: Buffer }): number {
  expect(chunk.type & NBD_REPLY_TYPE_ERROR_BIT).toBe(NBD_REPLY_TYPE_ERROR_BIT);
  return chunk.payload.readUInt32BE(0);
}

function name(n: string, tail: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(4 + Buffer.byteLength(n));
  b.writeUInt32BE(Buffer.byteLength(n), 0);
  b.write(n, 4);
  return Buffer.concat([b, tail]);
}

describe('option haggling', () => {
  test('refusable options get their error reply and the connection goes on to a working export', async () => {
    const raw = await RawNbd.connect(running.socket);
    try {
      await raw.hello();
      raw.option(99, Buffer.from('junk'));
      const unsup = await raw.optionReply();
      expect([unsup.option, unsup.type, unsup.data.toString()]).toEqual([99, NBD_REP_ERR_UNSUP, 'option 99 is not supported by this server']);
      raw.option(NBD_OPT_LIST);
      const list = await raw.optionReplies();
      expect(list.map((r) => r.type)).toEqual([NBD_REP_SERVER, NBD_REP_ACK]);
      expect(list[0]?.data.toString('utf8', 4, 7)).toBe('vda');
      raw.option(NBD_OPT_LIST, Buffer.from('x'));
      expect((await raw.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
      raw.option(NBD_OPT_INFO, name('nope', Buffer.from([0, 0])));
      expect((await raw.optionReply()).type).toBe(NBD_REP_ERR_UNKNOWN);
      raw.option(NBD_OPT_INFO, Buffer.from([0, 0, 0, 200, 1]));
      expect((await raw.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
      raw.option(NBD_OPT_SET_META_CONTEXT, name('vda', Buffer.from([0, 0, 0, 0])));
      expect((await raw.optionReply()).data.toString()).toMatch(/need structured replies/);
      raw.option(NBD_OPT_STARTTLS);
      expect((await raw.optionReply()).type).toBe(NBD_REP_ERR_POLICY);
      raw.option(NBD_OPT_INFO, name('', Buffer.from([0, 1, 0, 3])));
      const info = await raw.optionReplies();
      expect(info.map((r) => r.type)).toEqual([3, 3, NBD_REP_ACK]);
      expect(info[0]?.data.readBigUInt64BE(2)).toBe(BigInt(img.length));
      expect(info[1]?.data.readUInt32BE(10)).toBe(32 << 20);
      await raw.open('vda', { structured: true, greeted: true });
      raw.request(NBD_CMD_READ, 1n, 0, 4096);
      const reply = await raw.reply();
      expect(reply.map((c) => c.type)).toEqual([NBD_REPLY_TYPE_OFFSET_DATA]);
      expect(reply[0]?.payload.subarray(8).equals(img.subarray(0, 4096))).toBe(true);
    } finally {
      raw.destroy();
    }
  });

  test('LIST_META_CONTEXT answers base:allocation; EXPORT_NAME of the default export answers size and flags without padding', async () => {
    const r2 = await RawNbd.connect(running.socket);
    try {
      await r2.hello();
      r2.option(8);
      await r2.optionReplies();
      r2.option(NBD_OPT_LIST_META_CONTEXT, name('vda', Buffer.from([0, 0, 0, 0])));
      const ctx = await r2.optionReplies();
      expect(ctx.map((r) => [r.type, r.data.toString('utf8', 4)])).toEqual([[NBD_REP_META_CONTEXT, 'base:allocation'], [NBD_REP_ACK, '']]);
      r2.option(NBD_OPT_EXPORT_NAME, Buffer.alloc(0));
      const reply = await r2.read(10);
      expect([reply.readBigUInt64BE(0), reply.readUInt16BE(8)]).toEqual([BigInt(img.length), 0x0107 | 0x0100]);
      r2.request(NBD_CMD_READ, 5n, cs, 4096);
      const hole = await r2.reply();
      expect(hole.map((c) => [c.type, c.payload.readBigUInt64BE(0), c.payload.readUInt32BE(8)])).toEqual([[NBD_REPLY_TYPE_OFFSET_HOLE, BigInt(cs), 4096]]);
      r2.request(NBD_CMD_DISC, 6n, 0, 0);
      await r2.closedByServer();
    } finally {
      r2.destroy();
    }
  });

  test.each([
    ['a bad option magic', (r: RawNbd) => r.write(Buffer.alloc(16, 0x41)), undefined],
    ['option data of 4 GiB', (r: RawNbd) => r.option(NBD_OPT_INFO, Buffer.alloc(0), 0xffffffff), NBD_REP_ERR_TOO_BIG],
    ['NBD_OPT_EXPORT_NAME of an unknown export', (r: RawNbd) => r.option(NBD_OPT_EXPORT_NAME, Buffer.from('nope')), undefined],
    ['NBD_OPT_ABORT', (r: RawNbd) => r.option(NBD_OPT_ABORT), NBD_REP_ACK],
  ])('%s: the server answers as the protocol says, then closes the connection', async (_what, send, replyType) => {
    const raw = await RawNbd.connect(running.socket);
    try {
      await raw.hello();
      send(raw);
      if (replyType !== undefined) expect((await raw.optionReply()).type).toBe(replyType);
      await raw.closedByServer();
    } finally {
      raw.destroy();
    }
  });

  test('unknown client flags close the connection; a silent client is not waited for forever; the server serves on', async () => {
    const raw = await RawNbd.connect(running.socket);
    try {
      await raw.hello(NBD_FLAG_C_FIXED_NEWSTYLE | 0x80);
      await raw.closedByServer();
    } finally {
      raw.destroy();
    }
    const impatient = await startExport(repo, running.exported.pointId, tmp, { server: { handshakeTimeoutMs: 500 } });
    const silent = await RawNbd.connect(impatient.socket);
    try {
      await silent.read(18);
      await silent.closedByServer(5_000);
    } finally {
      silent.destroy();
      await impatient.close();
    }
    await stillServing();
  });
});

describe('transmission', () => {
  test('structured: writes, trims, caches refused EPERM, oversized and out-of-bounds reads EOVERFLOW/EINVAL, block status only with a context; the stream stays in step', async () => {
    const raw = await RawNbd.connect(running.socket);
    try {
      await raw.open('vda', { structured: true });
      const errnoFor = async (send: () => void): Promise<number> => {
        send();
        const chunks = await raw.reply();
        expect(chunks).toHaveLength(1);
        return errnoOf(chunks[0] as { type: number; payload: Buffer });
      };
      expect(await errnoFor(() => raw.request(NBD_CMD_READ, 1n, 0, 64 << 20))).toBe(NBD_EOVERFLOW);
      expect(await errnoFor(() => raw.request(NBD_CMD_READ, 2n, img.length - 512, 1024))).toBe(NBD_EINVAL);
      expect(await errnoFor(() => raw.request(NBD_CMD_READ, 3n, 0xffffffffffff0000n, 512))).toBe(NBD_EINVAL);
      expect(await errnoFor(() => raw.request(NBD_CMD_READ, 4n, 0, 512, NBD_CMD_FLAG_DF))).toBe(NBD_EINVAL);
      expect(await errnoFor(() => raw.request(42, 5n, 0, 512))).toBe(NBD_EINVAL);
      expect(await errnoFor(() => raw.request(NBD_CMD_BLOCK_STATUS, 6n, 0, 512))).toBe(NBD_EINVAL);
      for (const cmd of [NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES, NBD_CMD_CACHE]) expect(await errnoFor(() => raw.request(cmd, 7n, 0, 4096))).toBe(NBD_EPERM);
      // a write's payload is read past, not taken for the next header
      expect(
        await errnoFor(() => {
          raw.request(NBD_CMD_WRITE, 8n, 0, 70_000);
          raw.write(Buffer.alloc(70_000, 0x25));
        }),
      ).toBe(NBD_EPERM);
      raw.request(NBD_CMD_FLUSH, 9n, 0, 0);
      expect(await raw.simpleReply()).toEqual({ error: 0, cookie: 9n });
      raw.request(NBD_CMD_READ, 10n, 2 * cs, 8192);
      const data = await raw.reply();
      expect(data[0]?.payload.subarray(8).equals(img.subarray(2 * cs, 2 * cs + 8192))).toBe(true);
      expect(data[0]?.cookie).toBe(10n);
    } finally {
      raw.destroy();
    }
  });

  test('requests pipelined: 40 reads sent at once are all answered, each by its cookie, with the right bytes and holes', async () => {
    const raw = await RawNbd.connect(running.socket);
    try {
      await raw.open('vda', { structured: true, allocation: true });
      const reads = Array.from({ length: 40 }, (_, i) => ({ cookie: BigInt(1000 + i), offset: (i * 97_331) % (img.length - 300_000), length: 1 + ((i * 7919) % 300_000) }));
      for (const r of reads) raw.request(NBD_CMD_READ, r.cookie, r.offset, r.length);
      raw.request(NBD_CMD_BLOCK_STATUS, 1n, 0, img.length);
      const got = new Map<bigint, Buffer>();
      const done = new Set<bigint>();
      let status: Buffer | undefined;
      while (done.size < reads.length || !status) {
        const c = await raw.chunk();
        if (c.type === NBD_REPLY_TYPE_BLOCK_STATUS) {
          status = c.payload;
          continue;
        }
        const r = reads.find((x) => x.cookie === c.cookie);
        if (!r) throw new Error(`reply to unknown cookie ${c.cookie}`);
        const buf = got.get(r.cookie) ?? Buffer.alloc(r.length, 0xee);
        if (c.type === NBD_REPLY_TYPE_OFFSET_DATA) c.payload.copy(buf, Number(c.payload.readBigUInt64BE(0)) - r.offset, 8);
        else if (c.type === NBD_REPLY_TYPE_OFFSET_HOLE) buf.fill(0, Number(c.payload.readBigUInt64BE(0)) - r.offset, Number(c.payload.readBigUInt64BE(0)) - r.offset + c.payload.readUInt32BE(8));
        else throw new Error(`unexpected chunk type ${c.type}`);
        got.set(r.cookie, buf);
        if (c.flags & 1) done.add(r.cookie);
      }
      for (const r of reads) expect((got.get(r.cookie) as Buffer).equals(img.subarray(r.offset, r.offset + r.length))).toBe(true);
      // base:allocation of the whole disk: chunk 0 data, chunk 1 hole+zero, ...
      expect([status.readUInt32BE(0), status.readUInt32BE(4), status.readUInt32BE(8), status.readUInt32BE(12), status.readUInt32BE(16)]).toEqual([1, cs, 0, cs, 3]);
    } finally {
      raw.destroy();
    }
  });

  test('simple replies: data inline (zeroes for holes), EPERM for a write, EINVAL out of bounds; a bad request magic then closes only this connection', async () => {
    const raw = await RawNbd.connect(running.socket);
    try {
      await raw.open('vda', { structured: false });
      raw.request(NBD_CMD_READ, 1n, cs - 1000, 3000);
      expect(await raw.simpleReply()).toEqual({ error: 0, cookie: 1n });
      expect((await raw.read(3000)).equals(img.subarray(cs - 1000, cs + 2000))).toBe(true);
      raw.request(NBD_CMD_WRITE, 2n, 0, 10);
      raw.write(Buffer.alloc(10));
      expect(await raw.simpleReply()).toEqual({ error: NBD_EPERM, cookie: 2n });
      raw.request(NBD_CMD_READ, 3n, img.length, 1);
      expect(await raw.simpleReply()).toEqual({ error: NBD_EINVAL, cookie: 3n });
      raw.request(NBD_CMD_READ, 4n, 0, 512, 0, 0x12345678);
      await raw.closedByServer();
    } finally {
      raw.destroy();
    }
    await stillServing();
    expect(captured.lines.some((l) => String(l['msg']).includes('bad request magic 0x12345678'))).toBe(true);
  });

  test('a write of 4 GiB announced is answered EOVERFLOW and the connection closed', async () => {
    const raw = await RawNbd.connect(running.socket);
    try {
      await raw.open('vda', { structured: true });
      raw.request(NBD_CMD_WRITE, 1n, 0, 0xffffffff);
      const c = await raw.reply();
      expect(errnoOf(c[0] as { type: number; payload: Buffer })).toBe(NBD_EOVERFLOW);
      await raw.closedByServer();
    } finally {
      raw.destroy();
    }
  });
});

describe('a damaged chunk', () => {
  test('reads touching it fail with EIO (an error offset in a structured reply), every other read works, the chunk is logged once and the server serves on', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'damaged-'));
    const r = await initRepo(path.join(dir, 'repo'), V2);
    const image = mixedImage(r.chunkSize, 12);
    const m = await writeImagePoint(r, image);
    const digest = (await r.readIndex(m.pointId, 'vda')).digestHex(4);
    const loc = await blobLocation(r.dir, digest);
    await flipByte(loc.file, loc.offset + Math.floor(loc.storedLength / 2));
    const log = capturedLogger();
    const exp = await startExport(r, m.pointId, dir, { log: log.log });
    const c = await NbdClient.connectUnix(exp.socket, { exportName: 'vda' });
    try {
      const bad = await c.read(4 * cs + 100, 1000).catch((e: unknown) => e as { code: string; details: Record<string, unknown> });
      expect(bad).toMatchObject({ code: 'NBD_SERVER_ERROR', details: { errno: NBD_EIO } });
      expect((await c.read(3 * cs, cs)).equals(image.subarray(3 * cs, 4 * cs))).toBe(true);
      expect((await c.read(5 * cs, 2 * cs)).equals(image.subarray(5 * cs, 7 * cs))).toBe(true);
      const raw = await RawNbd.connect(exp.socket);
      try {
        await raw.open('vda', { structured: true });
        raw.request(NBD_CMD_READ, 1n, 3 * cs, 2 * cs);
        const chunks = await raw.reply();
        expect(chunks.map((k) => k.type)).toEqual([NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_TYPE_ERROR_OFFSET]);
        expect(chunks[0]?.payload.subarray(8).equals(image.subarray(3 * cs, 4 * cs))).toBe(true);
        expect(errnoOf(chunks[1] as { type: number; payload: Buffer })).toBe(NBD_EIO);
        expect((chunks[1] as { payload: Buffer }).payload.readBigUInt64BE((chunks[1] as { payload: Buffer }).payload.length - 8)).toBe(BigInt(4 * cs));
        expect(chunks[1]?.flags).toBe(1);
      } finally {
        raw.destroy();
      }
      await expect(runTool('nbdcopy', [exp.uri, path.join(dir, 'copy.raw')])).rejects.toThrow(/nbdcopy/);
      expect((await c.read(0, cs)).equals(image.subarray(0, cs))).toBe(true);
      const logged = log.lines.filter((l) => l['chunk'] === 4);
      expect(logged).toEqual([expect.objectContaining({ digest, offset: 4 * cs, device: 'vda', pointId: m.pointId, level: 50 })]);
      expect(log.lines.some((l) => l['msg'] === 'nbd request failed')).toBe(false);
    } finally {
      await c.close();
      await exp.close();
      await r.close();
    }
  });
});
