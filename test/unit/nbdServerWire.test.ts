import {
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_OPT_GO,
  NBD_REP_INFO,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REQUEST_MAGIC,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from '../../backend/src/nbd/constants';
import { decodeBlockStatus } from '../../backend/src/nbd/extents';
import {
  blockStatusChunk,
  errorChunk,
  errorText,
  exportNameReply,
  greeting,
  infoBlockSize,
  infoExport,
  matchContexts,
  offsetDataHeader,
  offsetHole,
  optionReply,
  parseExportRequest,
  parseMetaContextRequest,
  parseRequest,
  repServer,
  simpleReply,
} from '../../backend/src/nbd/serverWire';

function request(type: number, cookie: bigint, offset: bigint, length: number, flags = 0, magic = NBD_REQUEST_MAGIC): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(magic, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeBigUInt64BE(offset, 16);
  b.writeUInt32BE(length, 24);
  return b;
}

function exportRequest(name: string, infos: number[]): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((x, i) => b.writeUInt16BE(x, 6 + n.length + 2 * i));
  return b;
}

function metaRequest(name: string, queries: string[]): Buffer {
  const parts = [Buffer.alloc(4), Buffer.from(name), Buffer.alloc(4)];
  (parts[0] as Buffer).writeUInt32BE(Buffer.byteLength(name));
  (parts[2] as Buffer).writeUInt32BE(queries.length);
  for (const q of queries) {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(Buffer.byteLength(q));
    parts.push(l, Buffer.from(q));
  }
  return Buffer.concat(parts);
}

describe('nbd server wire encodings', () => {
  test('greeting: NBDMAGIC, IHAVEOPT, fixed newstyle and no zeroes', () => {
    expect(greeting().toString('hex')).toBe('4e42444d41474943' + '49484156454f5054' + '0003');
  });

  test('option replies and infos have the exact layout of the spec', () => {
    const r = optionReply(NBD_OPT_GO, NBD_REP_INFO, infoExport(0x123456789, 0x0103));
    expect(r.readBigUInt64BE(0)).toBe(0x3e889045565a9n);
    expect([r.readUInt32BE(8), r.readUInt32BE(12), r.readUInt32BE(16)]).toEqual([NBD_OPT_GO, NBD_REP_INFO, 12]);
    expect([r.readUInt16BE(20), r.readBigUInt64BE(22), r.readUInt16BE(30)]).toEqual([NBD_INFO_EXPORT, 0x123456789n, 0x0103]);
    const bs = infoBlockSize(1, 4096, 32 << 20);
    expect([bs.readUInt16BE(0), bs.readUInt32BE(2), bs.readUInt32BE(6), bs.readUInt32BE(10), bs.length]).toEqual([NBD_INFO_BLOCK_SIZE, 1, 4096, 32 << 20, 14]);
    const s = repServer('vda', 'a disk');
    expect([s.readUInt32BE(0), s.toString('utf8', 4, 7), s.toString('utf8', 7)]).toEqual([3, 'vda', 'a disk']);
    expect(exportNameReply(1024, 3, 124).length).toBe(134);
    expect(exportNameReply(1024, 3, 0).readBigUInt64BE(0)).toBe(1024n);
    expect(errorText('x'.repeat(5000)).length).toBe(4096);
  });

  test('requests: fields decoded; bad magic, wrong size and offsets beyond 2^53 are caught', () => {
    expect(parseRequest(request(0, 0xfedcba9876543210n, 4096n, 512, 8))).toEqual({ flags: 8, type: 0, cookie: 0xfedcba9876543210n, offset: 4096, length: 512 });
    expect(parseRequest(request(0, 1n, 0n, 1, 0, 0xdeadbeef))).toBe('bad request magic 0xdeadbeef');
    expect(parseRequest(Buffer.alloc(27))).toBe('a request header of 27 bytes');
    const huge = parseRequest(request(0, 1n, 0xffffffffffffffffn, 1));
    expect(typeof huge !== 'string' && huge.offset).toBe(Number.MAX_SAFE_INTEGER);
  });

  test('NBD_OPT_GO / INFO payloads: name and infos; truncated or inconsistent ones are refused with a reason', () => {
    expect(parseExportRequest(exportRequest('vda', [3, 1]))).toEqual({ name: 'vda', infos: [3, 1] });
    expect(parseExportRequest(exportRequest('', []))).toEqual({ name: '', infos: [] });
    expect(parseExportRequest(Buffer.alloc(5))).toMatch(/fewer than the 6/);
    const lying = exportRequest('vda', [3]);
    lying.writeUInt32BE(0xffffff00, 0);
    expect(parseExportRequest(lying)).toMatch(/a name of 4294967040 bytes/);
    expect(parseExportRequest(exportRequest('vda', [3]).subarray(0, 10))).toMatch(/1 info requests in 1 bytes/);
  });

  test('meta context payloads: queries decoded; lengths running past the data are refused', () => {
    expect(parseMetaContextRequest(metaRequest('vda', ['base:allocation', 'qemu:dirty-bitmap:x']))).toEqual({ name: 'vda', queries: ['base:allocation', 'qemu:dirty-bitmap:x'] });
    const bad = metaRequest('vda', ['base:allocation']);
    bad.writeUInt32BE(1000, 4 + 3 + 4);
    expect(parseMetaContextRequest(bad)).toMatch(/query 1 of 1000 bytes runs past the end/);
    const many = metaRequest('vda', []);
    many.writeUInt32BE(5, 7);
    expect(parseMetaContextRequest(many)).toMatch(/query 1 of 5 starts past the end/);
    expect(parseMetaContextRequest(Buffer.concat([metaRequest('', []), Buffer.alloc(3)]))).toBe('3 bytes after the last query');
  });

  test('contexts: SET selects base:allocation only by its name; LIST also answers the wildcard and no query', () => {
    expect(matchContexts(['base:allocation'], false)).toEqual(['base:allocation']);
    expect(matchContexts(['base:'], false)).toEqual([]);
    expect(matchContexts([], false)).toEqual([]);
    expect(matchContexts(['qemu:dirty-bitmap:a'], false)).toEqual([]);
    expect(matchContexts([], true)).toEqual(['base:allocation']);
    expect(matchContexts(['base:'], true)).toEqual(['base:allocation']);
    expect(matchContexts(['x-other:'], true)).toEqual([]);
  });

  test('transmission replies: simple, data, hole, errors and block status round-trip through the client decoder', () => {
    const simple = simpleReply(7n, 5);
    expect(simple.toString('hex')).toBe('67446698' + '00000005' + '0000000000000007');
    const data = offsetDataHeader(0, 9n, 1 << 20, 4096);
    expect([data.readUInt16BE(6), data.readUInt32BE(16), data.readBigUInt64BE(20), data.length]).toEqual([NBD_REPLY_TYPE_OFFSET_DATA, 8 + 4096, BigInt(1 << 20), 28]);
    const hole = offsetHole(NBD_REPLY_FLAG_DONE, 9n, 8192, 65536);
    expect([hole.readUInt16BE(4), hole.readUInt16BE(6), hole.readUInt32BE(16), hole.readBigUInt64BE(20), hole.readUInt32BE(28)]).toEqual([1, NBD_REPLY_TYPE_OFFSET_HOLE, 12, 8192n, 65536]);
    const err = errorChunk(NBD_REPLY_FLAG_DONE, 3n, 22, 'bad');
    expect([err.readUInt16BE(6), err.readUInt32BE(16), err.readUInt32BE(20), err.readUInt16BE(24), err.toString('utf8', 26)]).toEqual([NBD_REPLY_TYPE_ERROR, 9, 22, 3, 'bad']);
    const at = errorChunk(0, 3n, 5, 'damaged', 777);
    expect([at.readUInt16BE(6), at.readUInt32BE(16), at.readBigUInt64BE(at.length - 8)]).toEqual([NBD_REPLY_TYPE_ERROR_OFFSET, 6 + 7 + 8, 777n]);
    const extents = [
      { offset: 100, length: 1000, flags: 0 },
      { offset: 1100, length: 4096, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
    ];
    const bs = blockStatusChunk(NBD_REPLY_FLAG_DONE, 4n, 1, extents);
    expect([bs.readUInt16BE(6), bs.readUInt32BE(16)]).toEqual([NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 16]);
    expect(decodeBlockStatus(bs.subarray(20), 100, 100 + 5096)).toEqual(extents);
  });
});
