/** Shared by the benchmark scripts: a disk image full of incompressible data, and timing
 *  that starts every phase from the same page-cache state. */
import { execFile, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { runTool } from '../../backend/src/util/exec';

const MiB = 1 << 20;

/** `--name N` from the command line, else `def`. */
export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

export async function du(dir: string): Promise<number> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile('du', ['-sb', dir], (e, so) => (e ? reject(e) : resolve(so))),
  );
  return Number(out.split('\t')[0]);
}

/** Fills the image offline with data spread over the disk (64 MiB runs, zeroes between them):
 *  random, compressible (text-like: random words from a small vocabulary, about 3:1 with zstd),
 *  or mixed (the runs alternate between the two). */
export async function fillImage(file: string, diskBytes: number, dataBytes: number, tmp: string, kind: 'random' | 'compressible' | 'mixed' = 'random'): Promise<void> {
  const raw = path.join(tmp, 'fill.raw');
  const fh = await fs.open(raw, 'w');
  const run = 64 * MiB;
  const runs = Math.floor(dataBytes / run);
  const stride = Math.floor(diskBytes / runs / MiB) * MiB;
  try {
    await fh.truncate(diskBytes);
    for (let r = 0; r < runs; r++) {
      const random = kind === 'random' || (kind === 'mixed' && r % 2 === 0);
      for (let o = 0; o < run; o += 8 * MiB) await fh.write(random ? randomBytes(8 * MiB) : compressible(8 * MiB), 0, 8 * MiB, r * stride + o);
    }
  } finally {
    await fh.close();
  }
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, file], { timeoutMs: 600_000 });
  await fs.rm(raw);
}

/** Every timed phase starts with no dirty page cache: the fill step leaves gigabytes of dirty
 *  pages whose writeback would otherwise land on whichever phase runs next. */
export async function settle(): Promise<void> {
  await runTool('sync', [], { timeoutMs: 600_000 });
}

/** The built command (`node dist/backend/src/cli/main.js …`, as installed), start-up included in
 *  `seconds`; rejects with its stderr unless it exits 0. `env` is added to this process's. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ seconds: number; out: string }> {
  const main = path.join(__dirname, '..', '..', 'backend', 'src', 'cli', 'main.js');
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) resolve({ seconds, out });
      else reject(new Error(`olvm-backup ${args.join(' ')} exited ${code}: ${err}`));
    });
  });
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  await settle();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, value };
}


const WORDS = Array.from({ length: 4096 }, () => randomBytes(3 + (randomBytes(1)[0] as number) % 8).toString('base64url'));

/** `n` bytes of words separated by spaces and newlines: compresses like logs or text files. */
function textLike(n: number): Buffer {
  const out = Buffer.alloc(n);
  const pick = randomBytes(n / 4);
  let pos = 0;
  for (let i = 0; pos < n; i = (i + 2) % (pick.length - 1)) {
    const w = WORDS[pick.readUInt16LE(i) % WORDS.length] as string;
    pos += out.write(w + (pick[i]! % 16 === 0 ? '\n' : ' '), pos);
  }
  return out;
}

let textPool: Buffer | undefined;

/** Text-like bytes, each 4 KiB made unique by a random 16-byte stamp (no two chunks alike). */
export function compressible(n: number): Buffer {
  textPool ??= textLike(8 * MiB);
  const out = Buffer.from(textPool.subarray(0, n));
  const stamps = randomBytes((n / 4096) * 16);
  for (let i = 0; i < n / 4096; i++) stamps.copy(out, i * 4096, i * 16, i * 16 + 16);
  return out;
}
