/**
 * Format-2 repositories for the garbage collection and verify tests: small chunks (256 KiB) and
 * small packs (1 MiB, so four chunks of random data fill one), and looks at the pack files and
 * repository index files on disk.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Repository } from '../../backend/src/repository';
import { readIndexSnapshot } from '../../backend/src/repository/packScan';
import { initRepo, V2, type RepoFormat } from '../helpers/repoFormats';
import { CS, scratchRepositoriesWith } from './retentionFixture';

export const PACK_SIZE = 1 << 20;
/** The compiled repository module, for scripts run in another process. */
export const REPO_MODULE = path.join(__dirname, '..', '..', 'backend', 'src', 'repository');

/** The options a script in another process opens a repository of `format` with (one worker). */
export function openOptions(format: RepoFormat): string {
  return JSON.stringify({ ...format.open, workers: 1 });
}

/**
 * For one describe block: fresh format-2 repositories (plain or encrypted) in a temporary
 * directory, closed and removed after the block. One worker thread, so that a point's blobs go
 * into its packs in order (four chunks of random data fill a pack; its index node, stored last,
 * starts the next) and the tests can say which pack holds what.
 */
export function scratchPackRepositories(prefix: string, format: RepoFormat = V2): { newRepo: () => Promise<Repository>; dir: () => string } {
  return scratchRepositoriesWith(prefix, (dir) => initRepo(dir, format, { chunkSize: CS, packSize: PACK_SIZE, workers: 1 }));
}

/** Pack files under packs/ (full paths, sorted). */
export async function packFiles(repoDir: string): Promise<string[]> {
  const out: string[] = [];
  const root = path.join(repoDir, 'packs');
  for (const ab of await fs.readdir(root)) for (const f of await fs.readdir(path.join(root, ab))) out.push(path.join(root, ab, f));
  return out.sort();
}

export async function packBytes(repoDir: string): Promise<number> {
  let n = 0;
  for (const f of await packFiles(repoDir)) n += (await fs.stat(f)).size;
  return n;
}

/** Sets every pack file's mtime `ageMs` into the past (as if written long ago). */
export async function agePacks(repoDir: string, ageMs: number): Promise<void> {
  const t = new Date(Date.now() - ageMs);
  for (const f of await packFiles(repoDir)) await fs.utimes(f, t, t);
}

export async function indexFileNames(repoDir: string): Promise<string[]> {
  return (await fs.readdir(path.join(repoDir, 'index'))).filter((n) => !n.startsWith('.')).sort();
}

/** Where the repository index places a blob: pack name and entry. */
export async function blobLocation(repoDir: string, idHex: string): Promise<{ pack: string; file: string; offset: number; storedLength: number }> {
  const snap = await readIndexSnapshot(repoDir);
  for (const [pack, entries] of snap.packs) {
    const e = entries.find((x) => x.id.toString('hex') === idHex);
    if (e) return { pack, file: path.join(repoDir, 'packs', pack.slice(0, 2), pack), offset: e.offset, storedLength: e.storedLength };
  }
  throw new Error(`blob ${idHex} is in no pack`);
}

/** Flips one byte of a file (read-only pack files included). */
export async function flipByte(file: string, at: number): Promise<void> {
  await fs.chmod(file, 0o644);
  const fh = await fs.open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0x5a;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

/** A node script run in another process, talking in lines: `said(word)` waits for a line. */
export class ScriptProcess {
  readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  readonly exited: Promise<number | null>;

  constructor(script: string) {
    this.child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (b: Buffer) => {
      this.out += b.toString();
    });
    this.child.stderr.on('data', (b: Buffer) => {
      this.err += b.toString();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves once the script printed `word` on a line of its own (within `timeoutMs`). */
  said(word: string, timeoutMs = 60_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`script did not say ${word} in ${timeoutMs} ms; stdout: ${this.out}; stderr: ${this.err}`)), timeoutMs);
      const check = (): void => {
        if (this.out.split('\n').includes(word)) done();
      };
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.child.stdout.off('data', check);
        if (err) reject(err);
        else resolve();
      };
      this.child.stdout.on('data', check);
      void this.exited.then((code) => {
        if (!this.out.split('\n').includes(word)) done(new Error(`script exited (${code}) before saying ${word}; stderr: ${this.err}`));
      });
      check();
    });
  }

  /** Writes a line; `last` ends the script's stdin (so that it can exit once done). */
  send(line: string, last = false): void {
    if (last) this.child.stdin.end(line + '\n');
    else this.child.stdin.write(line + '\n');
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }
}
