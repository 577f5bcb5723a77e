/**
 * The product's NBD server serving a disk of a restore point, read by real NBD clients: nbdcopy
 * and nbdinfo (libnbd), qemu-img (QEMU's client), our own client; in every repository format,
 * from a point backed up through real QEMU, over TLS, and through `olvm-backup export`.
 * Hostile input and damaged chunks: nbdServerHostile.test.ts.
 */
import { spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { NbdClient, NbdServer } from '../../backend/src/nbd';
import { runTool } from '../../backend/src/util/exec';
import { BackupFixture, expectSameBytes } from '../helpers/backupFixture';
import { CLI_MAIN } from '../helpers/cli';
import { expectCode } from '../helpers/expectCode';
import { mixedImage, nbdcopyBytes, nbdinfoMap, qemuImgBytes, qemuMap, startExport, writeImagePoint, zeroChunks } from '../helpers/exportFixture';
import { RawNbd } from '../helpers/nbdRaw';
import { initRepo, REPO_FORMATS, TEST_PASSPHRASE, V2, V2_ENCRYPTED } from '../helpers/repoFormats';
import { requireTools } from '../helpers/tools';
import { PointExport } from '../../backend/src/restore';
import { NBD_OPT_GO, NBD_OPT_STARTTLS, NBD_REP_ACK, NBD_REP_ERR_TLS_REQD } from '../../backend/src/nbd/constants';

requireTools('nbdcopy', 'nbdinfo', 'qemu-img', 'openssl');

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-nbdserver-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** The base:allocation runs an index with these zero chunks must give: [offset, length, flags]. */
function expectedMap(size: number, cs: number, zeros: number[]): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (let i = 0; i * cs < size; i++) {
    const len = Math.min(cs, size - i * cs);
    const flags = zeros.includes(i) ? 3 : 0;
    const last = out[out.length - 1];
    if (last && last[2] === flags) last[1] += len;
    else out.push([i * cs, len, flags]);
  }
  return out;
}

describe.each(REPO_FORMATS)('an exported point of a $name repository', (format) => {
  test('nbdcopy and qemu-img read it byte for byte; nbdinfo --map and qemu-img map show its zero chunks as holes that read as zero', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, `${format.name}-`));
    const repo = await initRepo(path.join(dir, 'repo'), format);
    const exp = await (async () => {
      const img = mixedImage(repo.chunkSize, 12);
      const m = await writeImagePoint(repo, img);
      return { img, m, running: await startExport(repo, m.pointId, dir, { disk: 'system disk' }) };
    })();
    try {
      const { img, running } = exp;
      const cs = repo.chunkSize;
      expectSameBytes(await nbdcopyBytes(running.uri, path.join(dir, 'copy.raw')), img, 'nbdcopy');
      expectSameBytes(await qemuImgBytes(running.uri, path.join(dir, 'qemu.raw')), img, 'qemu-img convert');
      const zeros = zeroChunks(img, cs);
      expect(zeros).toEqual([1, 5, 6, 7, 9]);
      expect(await nbdinfoMap(running.uri)).toEqual(expectedMap(img.length, cs, zeros));
      // qemu's view: every zero chunk's bytes are reported zero and not data, every other chunk data
      const map = await qemuMap(running.uri);
      for (let i = 0; i * cs < img.length; i++) {
        const [s, e] = [i * cs, Math.min(img.length, (i + 1) * cs)];
        const covering = map.filter((r) => r.start < e && r.start + r.length > s);
        const want = zeros.includes(i) ? { zero: true, data: false } : { zero: false, data: true };
        expect(covering.map((r) => ({ zero: r.zero, data: r.data }))).toEqual(covering.map(() => want));
      }
      // the lease says what reads the point
      expect(await repo.leases(exp.m.pointId)).toEqual([expect.objectContaining({ purpose: 'export', holder: 'nbd test' })]);
      await expectCode(repo.deletePoint(exp.m.pointId, { reason: 'test', actor: 'test' }), 'REPO_POINT_LEASED');
    } finally {
      await exp.running.close();
      expect(await repo.leases(exp.m.pointId)).toEqual([]);
      await expect(fs.access(exp.running.socket)).rejects.toThrow();
      await repo.close();
    }
  });
});

describe('the export source', () => {
  test('a reader going on where it stopped gets the next chunks read ahead; a chunk read whole does not stay cached, a part of one does', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'ahead-'));
    const repo = await initRepo(path.join(dir, 'repo'), V2);
    const cs = repo.chunkSize;
    const img = mixedImage(cs, 20);
    const m = await writeImagePoint(repo, img);
    const exp = await PointExport.open({ repository: repo, pointId: m.pointId, disk: 'vda', holder: 'read-ahead test' });
    const cache = (exp as unknown as { cache: { has(i: number): boolean } }).cache;
    const bytes = async (offset: number, length: number): Promise<Buffer> => {
      const pieces = await exp.read(offset, length);
      const out = Buffer.concat(pieces.map((p) => ('data' in p ? Buffer.from(p.data) : 'zero' in p ? Buffer.alloc(p.length) : Buffer.alloc(0))));
      for (const p of pieces) if ('data' in p) p.release?.();
      return out;
    };
    try {
      expect((await bytes(0, 4096)).equals(img.subarray(0, 4096))).toBe(true);
      expect(cache.has(0)).toBe(true);
      expect(cache.has(2)).toBe(false);
      // the next read starts where the last ended: chunks 1..9 are on their way (1, 5, 6, 7, 9 are zero: no I/O)
      expect((await bytes(4096, cs)).equals(img.subarray(4096, cs + 4096))).toBe(true);
      expect([2, 3, 4, 8].map((i) => cache.has(i))).toEqual([true, true, true, true]);
      expect([5, 9, 12].map((i) => cache.has(i))).toEqual([false, false, false]);
      // a whole chunk read by itself leaves the cache
      expect((await bytes(12 * cs, cs)).equals(img.subarray(12 * cs, 13 * cs))).toBe(true);
      expect(cache.has(12)).toBe(false);
      expect(exp.allocation(0, img.length).map((e) => [e.offset / cs, e.length / cs, e.flags])).toEqual(
        expectedMap(img.length, cs, zeroChunks(img, cs)).map(([o, l, f]) => [o / cs, l / cs, f]),
      );
    } finally {
      await exp.close();
      await repo.close();
    }
  });
});

describe('a point backed up through real QEMU, exported', () => {
  const DEV = 'virtio-disk0';
  let fx: BackupFixture;
  let pointId: string;
  let reference: Buffer;

  beforeAll(async () => {
    fx = await BackupFixture.create('nbdserver', [{ id: DEV, format: 'qcow2', size: 16 << 20 }], V2);
    await fx.vm.writeRandom(DEV, 0, 1 << 20);
    await fx.vm.writeRandom(DEV, 5 << 20, 3 << 20);
    await fx.vm.writeRandom(DEV, (15 << 20) + 4096, 8192);
    pointId = (await fx.backup()).manifest.pointId;
    reference = fx.vm.reference.get(DEV) as Buffer;
  });
  afterAll(async () => {
    await fx?.dispose();
  });

  test('two nbdcopy runs and our own client read it at once, then one after another: every copy is the disk', async () => {
    const running = await startExport(fx.repo, pointId, fx.dir, { disk: DEV });
    try {
      const [a, b, mine] = await Promise.all([
        nbdcopyBytes(running.uri, path.join(fx.dir, 'a.raw')),
        nbdcopyBytes(running.uri, path.join(fx.dir, 'b.raw')),
        (async () => {
          const c = await NbdClient.connectUnix(running.socket, { exportName: 'vda', metaContexts: ['base:allocation'] });
          try {
            const parts = await Promise.all(Array.from({ length: 16 }, (_, i) => c.read(i << 20, 1 << 20)));
            return Buffer.concat(parts);
          } finally {
            await c.close();
          }
        })(),
      ]);
      expectSameBytes(a, reference, 'first nbdcopy');
      expectSameBytes(b, reference, 'second nbdcopy');
      expectSameBytes(mine, reference, 'our client');
      // one after another: connections come and go, the server stays
      for (let i = 0; i < 3; i++) expectSameBytes(await qemuImgBytes(running.uri, path.join(fx.dir, `q${i}.raw`)), reference, `qemu-img run ${i}`);
      expect(running.server.connections).toBe(0);
    } finally {
      await running.close();
    }
  });
});

describe('tls', () => {
  test('with a certificate the export needs STARTTLS: nbdcopy over nbds:// reads it; a plain client is told TLS is required', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'tls-'));
    const certs = path.join(dir, 'certs');
    await fs.mkdir(certs);
    await runTool('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(certs, 'ca-cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const repo = await initRepo(path.join(dir, 'repo'), V2);
    const img = mixedImage(repo.chunkSize, 8);
    const m = await writeImagePoint(repo, img);
    const exported = await PointExport.open({ repository: repo, pointId: m.pointId, disk: 'vda', holder: 'tls test' });
    const server = await NbdServer.start({
      exports: [{ name: 'vda', source: exported }],
      listen: { port: 0 },
      tls: { cert: await fs.readFile(path.join(certs, 'ca-cert.pem')), key: await fs.readFile(path.join(dir, 'key.pem')) },
    });
    try {
      expect(server.address).toMatchObject({ host: '127.0.0.1', tls: true });
      const port = server.address.port as number;
      expectSameBytes(await nbdcopyBytes(`nbds://127.0.0.1:${port}/vda?tls-certificates=${certs}`, path.join(dir, 'tls.raw')), img, 'nbdcopy over tls');
      await expect(runTool('nbdinfo', [`nbd://127.0.0.1:${port}/vda`])).rejects.toThrow(/nbdinfo/);
      // what a plain client is told, byte by byte: TLS required for GO, STARTTLS acknowledged
      const raw = await RawNbd.connect(port);
      try {
        await raw.hello();
        raw.option(NBD_OPT_GO, Buffer.from([0, 0, 0, 0, 0, 0]));
        expect((await raw.optionReply()).type).toBe(NBD_REP_ERR_TLS_REQD);
        raw.option(NBD_OPT_STARTTLS);
        expect((await raw.optionReply()).type).toBe(NBD_REP_ACK);
      } finally {
        raw.destroy();
      }
    } finally {
      await server.close();
      await exported.close();
      await repo.close();
    }
  });
});

describe('olvm-backup export', () => {
  test('serves the disk named by its alias from an encrypted repository until SIGTERM, then releases the lease and removes the socket', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'cli-'));
    const repo = await initRepo(path.join(dir, 'repo'), V2_ENCRYPTED);
    const img = mixedImage(repo.chunkSize, 10);
    const m = await writeImagePoint(repo, img);
    const socket = path.join(dir, 'export.sock');
    const child = spawn(process.execPath, [CLI_MAIN, 'export', '--repo', repo.dir, '--point', m.pointId, '--disk', 'system disk', '--socket', socket, '--json'], {
      env: { ...process.env, OLVM_BACKUP_REPO_PASSPHRASE: TEST_PASSPHRASE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const line = await Promise.race([
        new Promise<string>((resolve) => readline.createInterface({ input: child.stdout }).once('line', resolve)),
        exited.then((code) => Promise.reject(new Error(`export exited ${code}: ${stderr}`))),
        new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`no line from export within 30 s: ${stderr}`)), 30_000).unref()),
      ]);
      const where = JSON.parse(line) as Record<string, unknown>;
      expect(where).toEqual({ point: m.pointId, disk: 'vda', exportName: 'vda', size: img.length, socket, tls: false, uri: `nbd+unix:///vda?socket=${socket}` });
      expect((await fs.stat(socket)).mode & 0o777).toBe(0o600);
      expectSameBytes(await nbdcopyBytes(`nbd+unix:///?socket=${socket}`, path.join(dir, 'copy.raw')), img, 'nbdcopy of the default export');
      expect(await repo.leases(m.pointId)).toEqual([expect.objectContaining({ purpose: 'export', holder: expect.stringContaining('nbd export of disk system disk') })]);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      await expect(fs.access(socket)).rejects.toThrow();
      expect(await repo.leases(m.pointId)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await repo.close();
    }
  });

  test('a disk the point does not have is refused by name, with the disks it has', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'cli-bad-'));
    const repo = await initRepo(path.join(dir, 'repo'), V2);
    const m = await writeImagePoint(repo, mixedImage(repo.chunkSize, 2));
    await repo.close();
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [CLI_MAIN, 'export', '--repo', path.join(dir, 'repo'), '--point', m.pointId, '--disk', 'nope', '--socket', path.join(dir, 's')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.once('exit', (code) => resolve({ code, stderr: err }));
    });
    expect(r).toEqual({ code: 1, stderr: `olvm-backup: point ${m.pointId} has no disk 'nope' (it has: vda (system disk))\n` });
  });
});
