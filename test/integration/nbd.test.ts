import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs, readFileSync } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Duplex } from 'stream';
import { AppError } from '../../backend/src/errors';
import { NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO, NbdClient, type Extent } from '../../backend/src/nbd';

// Real servers: qemu-nbd (qemu-utils) serves the images, qemu-img / qemu-io make them and
// nbdinfo (libnbd-bin) is the independent oracle for maps and export properties. A missing
// tool fails every test in beforeAll: nothing here may be skipped silently.
const TOOLS = ['qemu-nbd', 'qemu-img', 'qemu-io', 'nbdinfo'];

function requireTools(): void {
  const missing = TOOLS.filter((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).error !== undefined);
  if (missing.length > 0) throw new Error(`nbd tests need ${missing.join(', ')}: apt-get install qemu-utils libnbd-bin`);
}

/** Runs a tool, throws with its stderr when it fails, returns stdout. */
function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface NbdServer {
  proc: ChildProcess;
  socket: string;
  uri: (exportName?: string) => string;
  stderr: () => string;
  exited: Promise<void>;
}

const servers = new Set<NbdServer>();
const clients = new Set<NbdClient>();

/**
 * Starts qemu-nbd on a unix socket and waits (bounded) until it accepts connections.
 * `-t` keeps it serving after a client leaves, `-e 8` lets the oracle connect alongside.
 */
async function startQemuNbd(dir: string, args: string[], exportName = 'ex', timeoutMs = 10_000): Promise<NbdServer> {
  const socket = path.join(dir, `nbd-${servers.size}-${Date.now()}.sock`);
  const proc = spawn('qemu-nbd', ['-t', '-e', '8', '-x', exportName, '-k', socket, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let hasExited = false;
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      hasExited = true;
      resolve();
    });
    proc.once('error', (err) => {
      stderr += String(err);
      hasExited = true;
      resolve();
    });
  });
  const server: NbdServer = {
    proc,
    socket,
    uri: (name = exportName) => `nbd+unix:///${name}?socket=${socket}`,
    stderr: () => stderr,
    exited,
  };
  servers.add(server);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hasExited) throw new Error(`qemu-nbd ${args.join(' ')} exited early: ${stderr}`);
    if (await canConnect(socket)) return server;
    if (Date.now() > deadline) throw new Error(`qemu-nbd did not listen on ${socket} within ${timeoutMs} ms: ${stderr}`);
    await sleep(20);
  }
}

async function stopServer(server: NbdServer, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  servers.delete(server);
  if (server.proc.exitCode !== null || server.proc.signalCode !== null) return;
  server.proc.kill('SIGCONT'); // a stopped process would not act on SIGTERM
  server.proc.kill(signal);
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 5000);
  await server.exited;
  clearTimeout(timer);
}

async function connect(socket: string, opts: Parameters<typeof NbdClient.connectUnix>[1]): Promise<NbdClient> {
  const c = await NbdClient.connectUnix(socket, opts);
  clients.add(c);
  return c;
}

/** Adjacent extents with equal flags merged: both sides may split runs at arbitrary points. */
function merged(list: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of list) {
    const last = out[out.length - 1];
    if (last && last.flags === e.flags && last.offset + last.length === e.offset) last.length += e.length;
    else out.push({ ...e });
  }
  return out;
}

function nbdinfoMap(uri: string, context: string): Extent[] {
  const raw = JSON.parse(run('nbdinfo', [`--map=${context}`, '--json', uri])) as Array<{ offset: number; length: number; type: number }>;
  return merged(raw.map((e) => ({ offset: e.offset, length: e.length, flags: e.type })));
}

function clip(list: Extent[], from: number, to: number): Extent[] {
  const out: Extent[] = [];
  for (const e of list) {
    const a = Math.max(e.offset, from);
    const b = Math.min(e.offset + e.length, to);
    if (a < b) out.push({ offset: a, length: b - a, flags: e.flags });
  }
  return out;
}

function expectCode(err: unknown, code: string): AppError {
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MiB = 1 << 20;
const KiB = 1 << 10;

describe('nbd client against qemu-nbd', () => {
  let dir: string;
  let rawImage: string; // 64 MiB sparse raw with random data islands
  let rawBytes: Buffer;
  let qcowImage: string; // 32 MiB qcow2 with a persistent bitmap 'bk'
  let qcowBytes: Buffer;
  const qcowDirty: Array<[number, number]> = [];

  beforeAll(async () => {
    requireTools();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-nbd-'));

    rawImage = path.join(dir, 'sparse.raw');
    run('qemu-img', ['create', '-q', '-f', 'raw', rawImage, String(64 * MiB)]);
    const fh = await fs.open(rawImage, 'r+');
    try {
      // Unaligned islands, one crossing a 32 MiB (max block size) boundary, one at the very end.
      for (const [off, len] of [
        [5 * MiB + 123, 1536 * KiB],
        [20 * MiB, 3 * MiB],
        [32 * MiB - 8 * KiB, 16 * KiB],
        [40 * MiB, 64 * KiB],
        [64 * MiB - 4 * KiB, 4 * KiB],
      ] as Array<[number, number]>) {
        await fh.write(randomBytes(len), 0, len, off);
      }
    } finally {
      await fh.close();
    }
    rawBytes = readFileSync(rawImage);

    qcowImage = path.join(dir, 'bitmap.qcow2');
    run('qemu-img', ['create', '-q', '-f', 'qcow2', qcowImage, String(32 * MiB)]);
    // Written before the bitmap exists: allocated data, but clean.
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 1M', '-c', 'write -P 0x12 8M 256k', qcowImage]);
    // `qemu-img bitmap --add` creates an enabled ('auto') bitmap, and offline qemu-io writes do
    // dirty it (checked against qemu-img 7.2 here).
    run('qemu-img', ['bitmap', '--add', qcowImage, 'bk']);
    run('qemu-io', [
      '-f', 'qcow2',
      '-c', 'write -P 0x21 512k 64k', // dirty, inside the clean-data range
      '-c', 'write -P 0x22 3M 100k', // unaligned end: dirties 2 granules (64 KiB)
      '-c', 'write -z 12M 1M', // a zero write dirties too
      '-c', 'write -P 0x23 31M 1M', // the last MiB
      qcowImage,
    ]);
    qcowDirty.push([512 * KiB, 64 * KiB], [3 * MiB, 128 * KiB], [12 * MiB, MiB], [31 * MiB, MiB]);
    const flat = path.join(dir, 'bitmap-flat.raw');
    run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcowImage, flat]);
    qcowBytes = readFileSync(flat);
  });

  afterEach(async () => {
    for (const c of clients) c.destroy();
    clients.clear();
    await Promise.all([...servers].map((s) => stopServer(s, 'SIGKILL')));
  });

  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  test('handshake: size, flags, block sizes and contexts agree with nbdinfo', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const c = await connect(srv.socket, { exportName: 'ex', metaContexts: ['base:allocation'] });
    const info = JSON.parse(run('nbdinfo', ['--json', '--no-content', srv.uri()])) as {
      exports: Array<Record<string, unknown>>;
    };
    const ex = info.exports[0] as Record<string, unknown>;
    expect(c.exportName).toBe('ex');
    expect(c.size).toBe(ex['export-size']);
    expect(c.size).toBe(64 * MiB);
    expect(c.readOnly).toBe(true);
    expect(c.readOnly).toBe(ex['is_read_only']);
    expect(c.canFlush).toBe(ex['can_flush']);
    expect(c.canTrim).toBe(ex['can_trim']);
    expect(c.canWriteZeroes).toBe(ex['can_zero']);
    expect(c.blockSize).toEqual({
      minimum: ex['block_size_minimum'],
      preferred: ex['block_size_preferred'],
      maximum: ex['block_size_maximum'],
    });
    expect([...c.metaContexts.keys()]).toEqual(['base:allocation']);
    expect(c.closed).toBe(false);
    await c.close();
    expect(c.closed).toBe(true);
    await c.close(); // idempotent
  });

  test('reads data and holes byte for byte, including reads split above the maximum block size', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const c = await connect(srv.socket, { exportName: 'ex' });
    expect(c.blockSize.maximum).toBe(32 * MiB);

    const whole = await c.read(0, c.size); // 64 MiB: two wire requests
    expect(whole.length).toBe(rawBytes.length);
    expect(whole.equals(rawBytes)).toBe(true);
    // Owns its whole ArrayBuffer, so it can be transferred to a worker.
    expect(whole.byteOffset).toBe(0);
    expect(whole.buffer.byteLength).toBe(whole.length);

    const cases: Array<[number, number]> = [
      [0, 1], // hole
      [5 * MiB + 100, 100], // hole -> data
      [5 * MiB + 123, 1536 * KiB], // exactly an island
      [20 * MiB - 4097, 3 * MiB + 8193], // hole, data, hole
      [32 * MiB - 10 * KiB, 20 * KiB], // across the 32 MiB boundary
      [64 * MiB - 5000, 5000], // through the last byte
      [30 * MiB, 4 * MiB + 17], // unaligned length, crossing holes and data
    ];
    for (const [off, len] of cases) {
      const b = await c.read(off, len);
      expect(b.length).toBe(len);
      expect(b.equals(rawBytes.subarray(off, off + len))).toBe(true);
    }
    expect((await c.read(7, 0)).length).toBe(0);
    await c.close();
  });

  test('reads a qcow2 export identically to qemu-img convert', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'qcow2', qcowImage]);
    const c = await connect(srv.socket, { exportName: 'ex' });
    const whole = await c.read(0, c.size);
    expect(whole.equals(qcowBytes)).toBe(true);
    await c.close();
  });

  test('64 concurrent reads on one connection all get their own data', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const c = await connect(srv.socket, { exportName: 'ex' });
    const rnd = prng(42);
    const reqs = Array.from({ length: 64 }, () => {
      const len = 1 + Math.floor(rnd() * MiB);
      const off = Math.floor(rnd() * (c.size - len));
      return { off, len };
    });
    const results = await Promise.all(reqs.map((r) => c.read(r.off, r.len)));
    results.forEach((b, i) => {
      const r = reqs[i] as { off: number; len: number };
      expect(b.equals(rawBytes.subarray(r.off, r.off + r.len))).toBe(true);
    });
    await c.close();
  });

  test('connectStream over a socket the caller opened works the same', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const sock = net.createConnection(srv.socket);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = await NbdClient.connectStream(sock, { exportName: 'ex', metaContexts: ['base:allocation'] });
    clients.add(c);
    const parts = await Promise.all([c.read(5 * MiB, 2 * MiB), c.read(20 * MiB, 3 * MiB), c.read(0, 40 * MiB)]);
    expect(parts[0]?.equals(rawBytes.subarray(5 * MiB, 7 * MiB))).toBe(true);
    expect(parts[1]?.equals(rawBytes.subarray(20 * MiB, 23 * MiB))).toBe(true);
    expect(parts[2]?.equals(rawBytes.subarray(0, 40 * MiB))).toBe(true);
    expect(merged(await c.extents('base:allocation'))).toEqual(nbdinfoMap(srv.uri(), 'base:allocation'));
    await c.close();
  });

  test('base:allocation extents equal nbdinfo --map on sparse raw and qcow2 images', async () => {
    for (const [fmt, image] of [
      ['raw', rawImage],
      ['qcow2', qcowImage],
    ] as Array<[string, string]>) {
      const srv = await startQemuNbd(dir, ['-r', '-f', fmt, image]);
      const c = await connect(srv.socket, { exportName: 'ex', metaContexts: ['base:allocation'] });
      const oracle = nbdinfoMap(srv.uri(), 'base:allocation');
      const ours = await c.extents('base:allocation');
      expect(ours).toEqual(oracle); // ours are merged already
      expect(ours.some((e) => e.flags === (NBD_STATE_HOLE | NBD_STATE_ZERO))).toBe(true);
      expect(ours.some((e) => e.flags === 0)).toBe(true);
      expect(ours[0]?.offset).toBe(0);
      expect(ours.reduce((s, e) => s + e.length, 0)).toBe(c.size);

      // A sub-range is clipped exactly to the range asked for.
      const from = 5 * MiB + 77;
      const to = 21 * MiB + 5;
      expect(await c.extents('base:allocation', from, to - from)).toEqual(merged(clip(oracle, from, to)));

      // One request: at least one extent, never outside the range.
      const one = await c.blockStatus('base:allocation', 4 * MiB, 4 * MiB);
      expect(one.length).toBeGreaterThan(0);
      expect(one[0]?.offset).toBe(4 * MiB);
      const last = one[one.length - 1] as Extent;
      expect(last.offset + last.length).toBeLessThanOrEqual(8 * MiB);
      await c.close();
      await stopServer(srv);
    }
  });

  test('qemu:dirty-bitmap context equals nbdinfo --map and the writes made after the bitmap', async () => {
    const ctx = 'qemu:dirty-bitmap:bk';
    const srv = await startQemuNbd(dir, ['-r', '-f', 'qcow2', '-B', 'bk', qcowImage]);
    const c = await connect(srv.socket, { exportName: 'ex', metaContexts: ['base:allocation', ctx] });
    expect(c.metaContexts.has(ctx)).toBe(true);
    expect(c.metaContexts.get(ctx)).not.toBe(c.metaContexts.get('base:allocation'));

    const dirty = await c.extents(ctx);
    expect(dirty).toEqual(nbdinfoMap(srv.uri(), ctx));
    expect(dirty.filter((e) => e.flags & NBD_STATE_DIRTY).map((e) => [e.offset, e.length])).toEqual(qcowDirty);
    // The clean data written before the bitmap is allocated but not dirty.
    const alloc = await c.extents('base:allocation', 0, MiB);
    expect(alloc).toEqual([{ offset: 0, length: MiB, flags: 0 }]);
    // Both contexts on one connection, interleaved.
    const [a, b] = await Promise.all([c.extents(ctx, 3 * MiB, MiB), c.extents('base:allocation', 3 * MiB, MiB)]);
    expect(a[0]).toEqual({ offset: 3 * MiB, length: 128 * KiB, flags: NBD_STATE_DIRTY });
    expect(b.length).toBeGreaterThan(0);
    await c.close();
  });

  test('write, write-zeroes, trim and flush land in the file', async () => {
    const image = path.join(dir, 'target.raw');
    const size = 48 * MiB;
    run('qemu-img', ['create', '-q', '-f', 'raw', image, String(size)]);
    const model = Buffer.alloc(size);
    const seed = randomBytes(8 * MiB);
    await fs.writeFile(image, seed, { flag: 'r+' });
    seed.copy(model);

    const srv = await startQemuNbd(dir, ['-f', 'raw', '--cache=writeback', image]);
    const c = await connect(srv.socket, { exportName: 'ex' });
    expect(c.readOnly).toBe(false);
    expect(c.canWriteZeroes).toBe(true);
    expect(c.canTrim).toBe(true);

    const apply = (off: number, data: Buffer): void => void data.copy(model, off);
    const w1 = randomBytes(100_001);
    const w2 = randomBytes(4 * KiB);
    const big = randomBytes(36 * MiB); // above the 32 MiB maximum: split into two requests
    await Promise.all([c.write(1_000_003, w1), c.write(2 * MiB, w2, { fua: true }), c.write(10 * MiB, big)]);
    apply(1_000_003, w1);
    apply(2 * MiB, w2);
    apply(10 * MiB, big);

    await c.writeZeroes(3 * MiB + 5, 70_000);
    model.fill(0, 3 * MiB + 5, 3 * MiB + 5 + 70_000);
    await c.writeZeroes(4 * MiB, MiB, { noHole: true, fua: true });
    model.fill(0, 4 * MiB, 5 * MiB);

    // Trimmed bytes are undefined until rewritten: accept old contents or zeroes, then rewrite.
    const trimOff = 6 * MiB;
    const before = await c.read(trimOff, MiB);
    await c.trim(trimOff, MiB);
    const after = await c.read(trimOff, MiB);
    expect(after.equals(before) || after.equals(Buffer.alloc(MiB))).toBe(true);
    const w3 = randomBytes(MiB);
    await c.write(trimOff, w3);
    apply(trimOff, w3);

    await c.flush();
    expect((await c.read(0, size)).equals(model)).toBe(true);
    await c.close();
    await stopServer(srv);
    expect(readFileSync(image).equals(model)).toBe(true);
  });

  test('an unknown export name fails with NBD_CONNECT_FAILED naming it', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const err = expectCode(await NbdClient.connectUnix(srv.socket, { exportName: 'no-such-export' }).catch((e: unknown) => e), 'NBD_CONNECT_FAILED');
    expect(err.message).toContain("'no-such-export'");
    expect(err.message).toContain(srv.socket);
    expect(err.message).toMatch(/not (found|present)/);
    // Also when meta contexts are asked for first (the export is named in SET_META_CONTEXT).
    const err2 = await NbdClient.connectUnix(srv.socket, { exportName: 'nope', metaContexts: ['base:allocation'] }).catch((e: unknown) => e);
    expect(expectCode(err2, 'NBD_CONNECT_FAILED').message).toContain("'nope'");
    // The server is unaffected.
    const c = await connect(srv.socket, { exportName: 'ex' });
    expect(c.size).toBe(64 * MiB);
    await c.close();
  });

  test('an unknown meta context fails with NBD_UNSUPPORTED naming it', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'qcow2', '-B', 'bk', qcowImage]);
    const err = await NbdClient.connectUnix(srv.socket, {
      exportName: 'ex',
      metaContexts: ['base:allocation', 'qemu:dirty-bitmap:missing'],
    }).catch((e: unknown) => e);
    const e = expectCode(err, 'NBD_UNSUPPORTED');
    expect(e.message).toContain("'qemu:dirty-bitmap:missing'");
    expect(e.message).not.toContain("'base:allocation'");
  });

  test('connecting to a missing socket or a silent server fails with coded errors', async () => {
    const missing = path.join(dir, 'missing.sock');
    expectCode(await NbdClient.connectUnix(missing, { exportName: 'ex' }).catch((e: unknown) => e), 'NBD_CONNECT_FAILED');

    const silentPath = path.join(dir, 'silent.sock');
    const accepted: net.Socket[] = [];
    const silent = net.createServer((s) => void accepted.push(s));
    await new Promise<void>((resolve) => silent.listen(silentPath, resolve));
    try {
      const t0 = Date.now();
      const err = await NbdClient.connectUnix(silentPath, { exportName: 'ex', timeoutMs: 200 }).catch((e: unknown) => e);
      expectCode(err, 'NBD_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(5000);
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 50);
      expectCode(await NbdClient.connectUnix(silentPath, { exportName: 'ex', signal: ctl.signal }).catch((e: unknown) => e), 'NBD_ABORTED');
    } finally {
      for (const s of accepted) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('server killed with requests in flight: all pending reject with NBD_DISCONNECTED', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const c = await connect(srv.socket, { exportName: 'ex' });
    srv.proc.kill('SIGSTOP'); // nothing can be answered from now on
    const pending = Array.from({ length: 8 }, (_, i) => c.read(i * MiB, MiB));
    await sleep(50);
    srv.proc.kill('SIGKILL');
    const settled = await Promise.allSettled(pending);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      const e = expectCode((s as PromiseRejectedResult).reason, 'NBD_DISCONNECTED');
      expect(e.message).toMatch(/^read of 1048576 bytes at offset \d+ on nbd export 'ex'/);
    }
    expect(c.closed).toBe(true);
    expectCode(await c.read(0, 1).catch((e: unknown) => e), 'NBD_DISCONNECTED');
    await c.close(); // closing a dead connection is a no-op
  });

  test('abort and timeout reject at once; late replies are dropped and the stream stays in sync', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const c = await connect(srv.socket, { exportName: 'ex', metaContexts: ['base:allocation'] });

    const pre = new AbortController();
    pre.abort(new Error('caller gave up'));
    expectCode(await c.read(0, 10, { signal: pre.signal }).catch((e: unknown) => e), 'NBD_ABORTED');

    srv.proc.kill('SIGSTOP');
    const ctl = new AbortController();
    const aborted = c.read(20 * MiB, 2 * MiB, { signal: ctl.signal });
    const timedOut = c.read(5 * MiB, 3 * MiB, { timeoutMs: 100 });
    const status = c.blockStatus('base:allocation', 0, 8 * MiB, { timeoutMs: 100 });
    const survivor = c.read(20 * MiB, MiB);
    await sleep(20);
    ctl.abort();
    const e1 = expectCode(await aborted.catch((e: unknown) => e), 'NBD_ABORTED');
    expect(e1.message).toContain('read of 2097152 bytes at offset 20971520');
    expectCode(await timedOut.catch((e: unknown) => e), 'NBD_TIMEOUT');
    expectCode(await status.catch((e: unknown) => e), 'NBD_TIMEOUT');
    expect(c.closed).toBe(false);

    srv.proc.kill('SIGCONT');
    expect((await survivor).equals(rawBytes.subarray(20 * MiB, 21 * MiB))).toBe(true);
    const next = await c.read(5 * MiB, 3 * MiB);
    expect(next.equals(rawBytes.subarray(5 * MiB, 8 * MiB))).toBe(true);
    expect(merged(await c.extents('base:allocation'))).toEqual(nbdinfoMap(srv.uri(), 'base:allocation'));
    await c.close();
  });

  test('close waits for the requests in flight, then refuses new ones', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const c = await connect(srv.socket, { exportName: 'ex' });
    const reads = Array.from({ length: 8 }, (_, i) => c.read(i * 4 * MiB, 4 * MiB));
    const closing = c.close();
    expectCode(await c.read(0, 1).catch((e: unknown) => e), 'NBD_DISCONNECTED');
    const results = await Promise.all(reads);
    results.forEach((b, i) => expect(b.equals(rawBytes.subarray(i * 4 * MiB, (i + 1) * 4 * MiB))).toBe(true));
    await closing;
    expect(c.closed).toBe(true);
  });

  test('invalid requests are refused before anything is sent', async () => {
    const srv = await startQemuNbd(dir, ['-r', '-f', 'raw', rawImage]);
    const c = await connect(srv.socket, { exportName: 'ex', metaContexts: ['base:allocation'] });
    const size = c.size;
    const invalid = async (p: Promise<unknown>): Promise<AppError> => expectCode(await p.catch((e: unknown) => e), 'INVALID_ARGUMENT');
    expect((await invalid(c.read(size, 1))).message).toMatch(/beyond the end of the export/);
    await invalid(c.read(size - 10, 11));
    await invalid(c.read(-1, 10));
    await invalid(c.read(0.5, 10));
    await invalid(c.extents('base:allocation', 0, size + 1));
    expect((await invalid(c.write(0, Buffer.alloc(512)))).message).toMatch(/read-only/);
    await invalid(c.writeZeroes(0, 512));
    await invalid(c.blockStatus('qemu:dirty-bitmap:x', 0, 512));
    await invalid(c.blockStatus('base:allocation', 0, 0));
    // The connection is untouched.
    expect((await c.read(size - 4096, 4096)).equals(rawBytes.subarray(size - 4096))).toBe(true);
    await c.close();
  });

  test('an error reply becomes NBD_SERVER_ERROR with the errno name; the connection stays usable', async () => {
    const image = path.join(dir, 'faulty.raw');
    run('qemu-img', ['create', '-q', '-f', 'raw', image, String(4 * MiB)]);
    // blkdebug fails writes touching sector 2048 (offset 1 MiB) with ENOSPC. (Read errors are
    // no use here: qemu-nbd 7.2 drops the connection on a failed structured read.)
    const opts = [
      'driver=raw',
      'file.driver=blkdebug',
      `file.image.filename=${image}`,
      'file.inject-error.0.event=write_aio',
      'file.inject-error.0.iotype=write',
      'file.inject-error.0.errno=28',
      'file.inject-error.0.sector=2048',
    ].join(',');
    const srv = await startQemuNbd(dir, ['--image-opts', opts]);
    const c = await connect(srv.socket, { exportName: 'ex' });
    const [bad, good] = await Promise.allSettled([c.write(MiB, Buffer.alloc(4096, 1)), c.write(0, Buffer.alloc(4096, 2))]);
    expect(bad.status).toBe('rejected');
    const e = expectCode((bad as PromiseRejectedResult).reason, 'NBD_SERVER_ERROR');
    expect(e.message).toMatch(/^write of 4096 bytes at offset 1048576 on nbd export 'ex'.* failed: ENOSPC/);
    expect(e.details).toMatchObject({ errno: 28, errnoName: 'ENOSPC' });
    expect(good.status).toBe('fulfilled');
    expect((await c.read(0, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
    await c.close();
  });
});

// ---- a scripted in-process server, for what qemu-nbd never does -------------------------------

interface FakeRequest {
  cookie: Buffer;
  flags: number;
  command: number;
  offset: number;
  length: number;
}

/**
 * Speaks the server side of the handshake, then hands each request to `onRequest`. Everything
 * it sends is cut into `chunk`-byte pieces, so the client sees headers and payloads split at
 * every possible position.
 */
class FakeNbd extends Duplex {
  private inbuf = Buffer.alloc(0);
  private phase: 'flags' | 'options' | 'transmission' = 'flags';

  constructor(
    private readonly cfg: {
      size: number;
      chunk: number;
      contexts?: Record<string, number>;
      /** Answer inside the client's write call (some Duplex implementations do); default: next tick. */
      sync?: boolean;
      onRequest: (req: FakeRequest, fake: FakeNbd) => void;
    },
  ) {
    super();
    const hello = Buffer.alloc(18);
    hello.write('NBDMAGIC', 0, 'latin1');
    hello.write('IHAVEOPT', 8, 'latin1');
    hello.writeUInt16BE(3, 16); // FIXED_NEWSTYLE | NO_ZEROES
    this.send(hello);
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.inbuf = Buffer.concat([this.inbuf, chunk]);
    if (this.cfg.sync) this.drain();
    else setImmediate(() => this.drain());
    cb();
  }

  send(buf: Buffer): void {
    for (let i = 0; i < buf.length; i += this.cfg.chunk) this.push(buf.subarray(i, i + this.cfg.chunk));
  }

  simple(cookie: Buffer, errno = 0, data?: Buffer): void {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(0x67446698, 0);
    h.writeUInt32BE(errno, 4);
    cookie.copy(h, 8);
    this.send(data ? Buffer.concat([h, data]) : h);
  }

  chunkReply(cookie: Buffer, flags: number, type: number, payload: Buffer): void {
    const h = Buffer.alloc(20);
    h.writeUInt32BE(0x668e33ef, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    cookie.copy(h, 8);
    h.writeUInt32BE(payload.length, 16);
    this.send(Buffer.concat([h, payload]));
  }

  data(cookie: Buffer, offset: number, bytes: Buffer, done: boolean): void {
    const p = Buffer.alloc(8 + bytes.length);
    p.writeBigUInt64BE(BigInt(offset), 0);
    bytes.copy(p, 8);
    this.chunkReply(cookie, done ? 1 : 0, 1, p);
  }

  hole(cookie: Buffer, offset: number, length: number, done: boolean): void {
    const p = Buffer.alloc(12);
    p.writeBigUInt64BE(BigInt(offset), 0);
    p.writeUInt32BE(length, 8);
    this.chunkReply(cookie, done ? 1 : 0, 2, p);
  }

  private optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(20);
    h.writeBigUInt64BE(0x3e889045565a9n, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(type, 12);
    h.writeUInt32BE(data.length, 16);
    this.send(Buffer.concat([h, data]));
  }

  private drain(): void {
    for (;;) {
      if (this.phase === 'flags') {
        if (this.inbuf.length < 4) return;
        this.inbuf = this.inbuf.subarray(4);
        this.phase = 'options';
      } else if (this.phase === 'options') {
        if (this.inbuf.length < 16) return;
        const len = this.inbuf.readUInt32BE(12);
        if (this.inbuf.length < 16 + len) return;
        const opt = this.inbuf.readUInt32BE(8);
        const data = this.inbuf.subarray(16, 16 + len);
        this.inbuf = this.inbuf.subarray(16 + len);
        this.onOption(opt, data);
      } else {
        if (this.inbuf.length < 28) return;
        const command = this.inbuf.readUInt16BE(6);
        const length = this.inbuf.readUInt32BE(24);
        const payload = command === 1 ? length : 0;
        if (this.inbuf.length < 28 + payload) return;
        const req: FakeRequest = {
          flags: this.inbuf.readUInt16BE(4),
          command,
          cookie: Buffer.from(this.inbuf.subarray(8, 16)),
          offset: Number(this.inbuf.readBigUInt64BE(16)),
          length,
        };
        this.inbuf = this.inbuf.subarray(28 + payload);
        if (command === 2) {
          this.push(null);
          return;
        }
        this.cfg.onRequest(req, this);
      }
    }
  }

  private onOption(opt: number, data: Buffer): void {
    if (opt === 8) this.optionReply(opt, 1);
    else if (opt === 10) {
      const nameLen = data.readUInt32BE(0);
      let p = 4 + nameLen;
      const n = data.readUInt32BE(p);
      p += 4;
      for (let i = 0; i < n; i++) {
        const l = data.readUInt32BE(p);
        const q = data.toString('utf8', p + 4, p + 4 + l);
        p += 4 + l;
        const id = this.cfg.contexts?.[q];
        if (id !== undefined) {
          const r = Buffer.alloc(4 + Buffer.byteLength(q));
          r.writeUInt32BE(id, 0);
          r.write(q, 4);
          this.optionReply(opt, 4, r);
        }
      }
      this.optionReply(opt, 1);
    } else if (opt === 7) {
      const info = Buffer.alloc(12);
      info.writeUInt16BE(0, 0); // NBD_INFO_EXPORT
      info.writeBigUInt64BE(BigInt(this.cfg.size), 2);
      info.writeUInt16BE(1 | 4, 10); // HAS_FLAGS | SEND_FLUSH
      this.optionReply(opt, 3, info);
      this.optionReply(opt, 1);
      this.phase = 'transmission';
    } else if (opt === 2) {
      this.optionReply(opt, 1);
      this.push(null);
    } else {
      this.optionReply(opt, 0x80000001);
    }
  }
}

describe('nbd client against a scripted server (replies qemu-nbd does not produce)', () => {
  const SIZE = 4 * MiB;
  const content = randomBytes(SIZE);

  /** Serves reads as alternating data/hole chunks of `piece` bytes, out of order, then NONE. */
  function sparseReads(piece: number) {
    return (req: FakeRequest, fake: FakeNbd): void => {
      if (req.command === 0) {
        const parts: Array<() => void> = [];
        for (let o = 0; o < req.length; o += piece) {
          const len = Math.min(piece, req.length - o);
          const abs = req.offset + o;
          if ((abs / piece) % 2 === 1) parts.push(() => fake.hole(req.cookie, abs, len, false));
          else parts.push(() => fake.data(req.cookie, abs, content.subarray(abs, abs + len), false));
        }
        parts.reverse().forEach((p) => p());
        fake.chunkReply(req.cookie, 1, 0, Buffer.alloc(0));
      } else if (req.command === 7) {
        const p = Buffer.alloc(4 + 16);
        p.writeUInt32BE(5, 0);
        p.writeUInt32BE(piece, 4);
        p.writeUInt32BE(0, 8);
        p.writeUInt32BE(SIZE, 12); // longer than asked: must be clipped
        p.writeUInt32BE(3, 16);
        fake.chunkReply(req.cookie, 1, 5, p);
      } else {
        fake.simple(req.cookie);
      }
    };
  }

  function expected(offset: number, length: number, piece: number): Buffer {
    const out = Buffer.from(content.subarray(offset, offset + length));
    for (let o = 0; o < length; o += piece) {
      const abs = offset + o;
      if ((abs / piece) % 2 === 1) out.fill(0, o, Math.min(o + piece, length));
    }
    return out;
  }

  test('parses replies arriving one byte at a time, chunks out of order, holes zero-filled', async () => {
    const piece = 4096;
    const fake = new FakeNbd({ size: SIZE, chunk: 1, sync: true, contexts: { 'base:allocation': 5 }, onRequest: sparseReads(piece) });
    const c = await NbdClient.connectStream(fake, { exportName: 'x', metaContexts: ['base:allocation'] });
    const [a, b] = await Promise.all([c.read(0, 64 * KiB), c.read(piece * 3, piece * 2)]);
    expect(a.equals(expected(0, 64 * KiB, piece))).toBe(true);
    expect(b.equals(expected(piece * 3, piece * 2, piece))).toBe(true);
    expect(await c.blockStatus('base:allocation', 0, 3 * piece)).toEqual([
      { offset: 0, length: piece, flags: 0 },
      { offset: piece, length: 2 * piece, flags: 3 },
    ]);
    await c.flush();
    await c.close();
    expect(c.closed).toBe(true);
  });

  test('larger socket pieces and many requests in flight', async () => {
    const piece = 64 * KiB;
    const fake = new FakeNbd({ size: SIZE, chunk: 1000, onRequest: sparseReads(piece) });
    const c = await NbdClient.connectStream(fake, { exportName: 'x' });
    const reqs = Array.from({ length: 32 }, (_, i) => ({ off: (i * 100 * KiB) % (SIZE - 200 * KiB), len: 200 * KiB }));
    const out = await Promise.all(reqs.map((r) => c.read(r.off, r.len)));
    out.forEach((b, i) => {
      const r = reqs[i] as { off: number; len: number };
      expect(b.equals(expected(r.off, r.len, piece))).toBe(true);
    });
    await c.close();
  });

  test('an error chunk before DONE fails the request, the following chunks are consumed', async () => {
    const fake = new FakeNbd({
      size: SIZE,
      chunk: 7,
      onRequest: (req, f) => {
        if (req.command === 0 && req.offset === 0) {
          const msg = Buffer.from('disk on fire');
          const p = Buffer.alloc(6 + msg.length + 8);
          p.writeUInt32BE(5, 0);
          p.writeUInt16BE(msg.length, 4);
          msg.copy(p, 6);
          p.writeBigUInt64BE(100n, 6 + msg.length);
          f.chunkReply(req.cookie, 0, 0x8002, p); // ERROR_OFFSET, not done
          f.data(req.cookie, 0, content.subarray(0, req.length), false);
          f.chunkReply(req.cookie, 1, 0, Buffer.alloc(0));
        } else if (req.command === 0) {
          f.data(req.cookie, req.offset, content.subarray(req.offset, req.offset + req.length), true);
        } else {
          f.simple(req.cookie, 22); // EINVAL as a simple reply
        }
      },
    });
    const c = await NbdClient.connectStream(fake, { exportName: 'x' });
    const e = expectCode(await c.read(0, 4096).catch((x: unknown) => x), 'NBD_SERVER_ERROR');
    expect(e.message).toContain('EIO: disk on fire');
    expect(e.details).toMatchObject({ errno: 5, errnoName: 'EIO', serverMessage: 'disk on fire', errorOffset: 100 });
    expectCode(await c.flush().catch((x: unknown) => x), 'NBD_SERVER_ERROR');
    expect((await c.read(8192, 4096)).equals(content.subarray(8192, 12288))).toBe(true);
    await c.close();
  });

  // [name, misbehaviour on the second request, expected message, whether that request itself completes first]
  const violations: Array<[string, (req: FakeRequest, f: FakeNbd) => void, RegExp, boolean]> = [
    ['bad reply magic', (_req, f) => f.send(Buffer.alloc(16, 0xab)), /bad reply magic/, false],
    [
      'unknown cookie',
      (req, f) => {
        const other = Buffer.from(req.cookie);
        other.writeUInt32BE(other.readUInt32BE(4) + 1000, 4);
        f.simple(other);
      },
      /unknown cookie/,
      false,
    ],
    ['data chunk outside the request', (req, f) => f.data(req.cookie, req.offset + req.length, Buffer.alloc(10), true), /outside the read request/, false],
    [
      'reply for a finished request',
      (req, f) => {
        f.data(req.cookie, req.offset, content.subarray(req.offset, req.offset + req.length), true);
        f.chunkReply(req.cookie, 1, 0, Buffer.alloc(0));
      },
      /unknown cookie/,
      true,
    ],
    ['read reply that does not cover the range', (req, f) => f.hole(req.cookie, req.offset, req.length / 2, true), /covered/, false],
  ];

  test.each(violations)('protocol violation (%s): NBD_PROTOCOL_ERROR, connection dropped, all pending rejected', async (_name, misbehave, pattern, secondCompletes) => {
    let first = true;
    const fake = new FakeNbd({
      size: SIZE,
      chunk: 5,
      onRequest: (req, f) => {
        // The first request is left unanswered, so it is pending when the second one breaks the stream.
        if (first) {
          first = false;
          return;
        }
        misbehave(req, f);
      },
    });
    const c = await NbdClient.connectStream(fake, { exportName: 'x' });
    const pending = c.read(0, 4096);
    const [r1, r2] = await Promise.allSettled([pending, c.read(8192, 4096)]);
    expect(c.closed).toBe(true);
    if (secondCompletes) expect(r2.status).toBe('fulfilled');
    for (const r of secondCompletes ? [r1] : [r1, r2]) {
      expect(r.status).toBe('rejected');
      const e = expectCode((r as PromiseRejectedResult).reason, 'NBD_PROTOCOL_ERROR');
      const chain = `${e.message} ${String((e.cause as Error | undefined)?.message ?? '')}`;
      expect(chain).toMatch(pattern);
    }
    expectCode(await c.read(0, 1).catch((x: unknown) => x), 'NBD_DISCONNECTED');
  });

  test('a meta context the server does not grant fails the handshake, naming it', async () => {
    const fake = new FakeNbd({ size: SIZE, chunk: 3, contexts: { 'base:allocation': 1 }, onRequest: () => undefined });
    const err = await NbdClient.connectStream(fake, { exportName: 'x', metaContexts: ['base:allocation', 'qemu:dirty-bitmap:b'] }).catch(
      (x: unknown) => x,
    );
    expect(expectCode(err, 'NBD_UNSUPPORTED').message).toContain("'qemu:dirty-bitmap:b'");
    expect(fake.destroyed).toBe(true);
  });
});
