import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, Repository } from '../../backend/src/repository';
import { withVmDescription } from '../../backend/src/restore/engine/ovfDescription';
import { PointStream, type Segment } from '../../backend/src/restore/engine/segments';

const KiB = 1024;
const MiB = 1 << 20;

/** The executor's parts that need no engine: the upload's request stream from a real
 *  repository, and the OVF description. */
describe('restore into the engine: parts', () => {
  let dir: string;
  let repo: Repository;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-restore-parts-'));
    repo = await Repository.init(path.join(dir, 'repo'), { chunkSize: MiB });
  });
  afterAll(async () => {
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('a point becomes data and zero requests in disk order, merged up to their limits, with the SHA-256 of the whole image', async () => {
    // chunks: 0 data | 1 zero | 2 zero | 3 data with a zero hole in the middle | 4 data | 5 data | 6 zero (half chunk, the tail)
    const size = 6 * MiB + MiB / 2;
    const image = Buffer.alloc(size);
    randomBytes(MiB).copy(image, 0);
    randomBytes(MiB).copy(image, 3 * MiB);
    image.fill(0, 3 * MiB + 128 * KiB, 3 * MiB + 384 * KiB);
    randomBytes(2 * MiB).copy(image, 4 * MiB);
    const w = await repo.beginPoint({ vm: { key: 'parts', name: 'parts' }, pointId: newPointId(new Date()), createdAt: new Date(), parentPointId: null });
    const disk = w.beginDisk({ device: 'd0', virtualSize: size });
    for (let i = 0; i * MiB < size; i++) await disk.putChunk(i, Buffer.from(image.subarray(i * MiB, Math.min(size, (i + 1) * MiB))));
    await disk.finish();
    const m = await w.commit({
      disks: [{ device: 'd0', node: 'n', format: 'raw', mode: 'full', reason: 'first-backup', bitmap: 'b', bitmapPersistent: false, bytesRead: size, meta: {} }],
      consistency: 'crash',
      vmDefinition: null,
    });
    const point = await repo.openPoint(m.pointId, { purpose: 'restore', holder: 'test' });
    const index = await point.index('d0');

    const stream = new PointStream(point, index, { maxData: 2 * MiB, maxZero: 1 << 30, readAhead: 3 });
    const segs: Segment[] = [];
    for await (const s of stream.segments()) segs.push(s);
    const shape = segs.map((s) => `${s.kind} ${s.offset / KiB}+${s.length / KiB}`);
    expect(shape).toEqual([
      'data 0+1024',
      'zero 1024+2048', // two zero chunks, one request
      'data 3072+128',
      'zero 3200+256', // the zero run inside chunk 3
      'data 3456+1664', // the rest of chunk 3 and chunk 4, merged up to the 2 MiB limit
      'data 5120+1024',
      'zero 6144+512', // the zero tail (a short last chunk)
    ]);
    // contiguous, covering the disk, data exactly the non-zero bytes
    let pos = 0;
    const rebuilt = Buffer.alloc(size);
    for (const s of segs) {
      expect(s.offset).toBe(pos);
      if (s.kind === 'data') {
        expect(s.length).toBeLessThanOrEqual(2 * MiB);
        Buffer.concat(s.buffers).copy(rebuilt, s.offset);
        expect(Buffer.concat(s.buffers).length).toBe(s.length);
      } else {
        expect(image.subarray(s.offset, s.offset + s.length).every((b) => b === 0)).toBe(true);
      }
      pos += s.length;
    }
    expect(pos).toBe(size);
    expect(rebuilt.equals(image)).toBe(true);
    for (let i = 1; i < segs.length; i++) expect(segs[i]?.kind === 'zero' && segs[i - 1]?.kind === 'zero').toBe(false);
    expect(segs.filter((s) => s.kind === 'zero').map((s) => s.length)).toEqual([2 * MiB, 256 * KiB, MiB / 2]);
    expect(await stream.sha256()).toBe(createHash('sha256').update(image).digest('hex'));
    await point.release();
  });

  test('the VM description goes into the Content element, not the OS section', () => {
    const ovf =
      '<ovf:Envelope><References/><Content ovf:id="out"><Name>web01</Name><Description>web server</Description>' +
      '<Section xsi:type="ovf:OperatingSystemSection_Type"><Description>rhel_8x64</Description></Section></Content></ovf:Envelope>';
    const out = withVmDescription(ovf, 'Restored by olvm-backup from web01 at 2026-01-01T00:00:00.000Z & <more>');
    expect(out).toBe(
      '<ovf:Envelope><References/><Content ovf:id="out"><Name>web01</Name><Description>Restored by olvm-backup from web01 at 2026-01-01T00:00:00.000Z &amp; &lt;more&gt;</Description>' +
        '<Section xsi:type="ovf:OperatingSystemSection_Type"><Description>rhel_8x64</Description></Section></Content></ovf:Envelope>',
    );
    expect(withVmDescription('<Content><Name>a</Name><Description/><Section/></Content>', 'x')).toBe('<Content><Name>a</Name><Description>x</Description><Section/></Content>');
    expect(withVmDescription('<Content><Name>a</Name><Section><Description>os</Description></Section></Content>', 'x')).toBe(
      '<Content><Name>a</Name><Description>x</Description><Section><Description>os</Description></Section></Content>',
    );
    expect(withVmDescription('<ovf:Envelope/>', 'x')).toBeNull();
  });
});
