/**
 * A file-browsing session over one restore point (file-level restore): its appliance
 * (fileBrowseAppliance.ts) launched once, then answers — list a folder, stat, find by glob
 * across the point's filesystems (bounded), read a file and archive a folder as .tar.gz (both
 * streamed through a fifo: memory stays bounded whatever the size). Every path is taken inside
 * one filesystem: `..` is refused before anything runs, symlinks are resolved by the appliance
 * (realpath) and refused when they lead out of their filesystem, device files, fifos and
 * sockets are never read. An unreadable file (damaged chunks, a corrupt filesystem) is
 * FILE_UNREADABLE for that request only: the session answers the next one.
 */
import { closeSync, constants as fsc, openSync, promises as fs } from 'fs';
import * as net from 'net';
import * as path from 'path';
import { PassThrough, type Readable } from 'stream';
import { AppError } from '../errors';
import { runTool } from '../util/exec';
import type { Logger } from '../util/log';
import { Appliance, type ApplianceOptions, type BrowseLayout } from './fileBrowseAppliance';
import { fishQuote } from './fileBrowseFish';
import { displayName, globMatcher, joinPath, parseStats, pathComponents, plainName, splitNul, type FileStat } from './fileBrowsePaths';

const STEP_TIMEOUT_MS = 120_000;
const FIND_TIMEOUT_MS = 600_000;
/** A stream's guestfish command fails after this long without a byte through its fifo. */
const STREAM_IDLE_MS = 120_000;
const LIST_BATCH_CHARS = 6000;
export const MAX_LIST_ENTRIES = 10_000;
export const MAX_FIND_RESULTS = 1000;

export interface BrowseEntry extends FileStat {
  /** The name's bytes (base64): names may hold newlines or bytes that are not UTF-8. */
  nameB64: string;
  /** The name escaped for display (`\n`, `\xHH`, `\\`); parseDisplayName() gives the bytes back. */
  name: string;
  /** A symlink's target (escaped like `name`), else null. */
  target: string | null;
}

export interface FoundEntry extends FileStat {
  filesystem: string;
  pathB64: string;
  path: string;
}

/** A path inside one filesystem of the point, as bytes (from displayed text: parseDisplayName). */
export interface BrowsePath {
  filesystem: string;
  path: Buffer;
}

export type BrowseOptions = ApplianceOptions;

export class BrowseSession {
  private transfers = 0;
  private closing: Promise<void> | undefined;

  private constructor(private readonly appliance: Appliance, readonly pointId: string, private readonly log: Logger | undefined) {}

  /** Launches the appliance (20–30 s under TCG) and mounts what it finds. */
  static async open(opts: BrowseOptions): Promise<BrowseSession> {
    return new BrowseSession(await Appliance.open(opts), opts.pointId, opts.log);
  }

  get layout(): BrowseLayout {
    return this.appliance.layout;
  }

  /** False once guestfish ended (a timeout, a crash): the session must be opened again. */
  get usable(): boolean {
    return this.closing === undefined && this.appliance.fish.alive;
  }

  /** A folder's entries (at most `limit`, default and cap MAX_LIST_ENTRIES), sorted by name bytes. */
  async list(at: BrowsePath, limit = MAX_LIST_ENTRIES): Promise<{ entries: BrowseEntry[]; truncated: boolean }> {
    const dir = await this.resolve(at);
    const st = await this.lstat(dir);
    if (st.type !== 'directory') throw new AppError('INVALID_ARGUMENT', `${this.shown(at)} is not a folder (it is a ${st.type})`);
    const listing = path.join(this.appliance.dir, 'ls0.out');
    await this.fishOk(`ls0 ${fishQuote(dir)} ${fishQuote(listing)}`, STEP_TIMEOUT_MS, `listing ${this.shown(at)}`);
    let names: Buffer[];
    try {
      names = splitNul(await fs.readFile(listing)).sort((a, b) => Buffer.compare(a, b));
    } finally {
      await fs.rm(listing, { force: true });
    }
    const truncated = names.length > Math.min(limit, MAX_LIST_ENTRIES);
    names = names.slice(0, Math.min(limit, MAX_LIST_ENTRIES));
    const stats = await this.statMany(dir, names);
    const entries: BrowseEntry[] = [];
    for (const [i, name] of names.entries()) {
      const s = stats[i];
      if (!s) continue;
      let target: string | null = null;
      if (s.type === 'symlink') {
        const r = await this.appliance.fish.run(`readlink ${fishQuote(Buffer.concat([dir, Buffer.from('/'), name]))}`, STEP_TIMEOUT_MS);
        target = r.error === undefined ? displayName(stripNewline(r.output)) : null;
      }
      entries.push({ ...s, nameB64: name.toString('base64'), name: displayName(name), target });
    }
    return { entries, truncated };
  }

  /** The entry at a path itself (a symlink as a symlink, with its target). */
  async stat(at: BrowsePath): Promise<BrowseEntry> {
    const parts = pathComponents(at.path);
    const name = parts[parts.length - 1] ?? Buffer.from('/');
    const parent = await this.resolve({ filesystem: at.filesystem, path: joinPath('', parts.slice(0, -1)) });
    const full = parts.length ? Buffer.concat([parent, Buffer.from('/'), name]) : parent;
    const s = await this.lstat(full);
    let target: string | null = null;
    if (s.type === 'symlink') target = displayName(stripNewline(await this.fishOk(`readlink ${fishQuote(full)}`, STEP_TIMEOUT_MS, `reading the link ${this.shown(at)}`)));
    return { ...s, nameB64: name.toString('base64'), name: displayName(name), target };
  }

  /**
   * Names matching `glob` (globMatcher) in every mounted filesystem (or one), at most `limit`
   * (default 200, cap MAX_FIND_RESULTS); `truncated` when more matched.
   */
  async find(glob: string, opts: { filesystem?: string; limit?: number; caseInsensitive?: boolean } = {}): Promise<{ results: FoundEntry[]; truncated: boolean }> {
    const limit = Math.max(1, Math.min(opts.limit ?? 200, MAX_FIND_RESULTS));
    const match = globMatcher(glob, opts.caseInsensitive ?? false);
    const results: FoundEntry[] = [];
    let truncated = false;
    const targets = [...this.appliance.mounts].filter(([dev]) => opts.filesystem === undefined || dev === opts.filesystem);
    if (opts.filesystem !== undefined && targets.length === 0) throw this.noFilesystem(opts.filesystem);
    for (const [device, mp] of targets) {
      const out = path.join(this.appliance.dir, 'find0.out');
      try {
        await this.fishOk(`find0 ${fishQuote(mp)} ${fishQuote(out)}`, FIND_TIMEOUT_MS, `searching ${device}`);
        // find0 names start with a slash (relative to the mount point)
        const hits = splitNul(await fs.readFile(out))
          .map((rel) => (rel[0] === 0x2f ? rel.subarray(1) : rel))
          .filter((rel) => match(rel));
        hits.sort((a, b) => Buffer.compare(a, b));
        for (const rel of hits) {
          if (results.length >= limit) {
            truncated = true;
            break;
          }
          const full = Buffer.concat([Buffer.from(`${mp}/`), rel]);
          const [s] = parseStats((await this.appliance.fish.run(`lstatns ${fishQuote(full)}`, STEP_TIMEOUT_MS)).output);
          if (!s) continue;
          const p = Buffer.concat([Buffer.from('/'), rel]);
          results.push({ ...s, filesystem: device, pathB64: p.toString('base64'), path: displayName(p) });
        }
      } finally {
        await fs.rm(out, { force: true });
      }
      if (truncated) break;
    }
    return { results, truncated };
  }

  /** A regular file's bytes, streamed (symlinks followed while they stay in the filesystem). */
  async read(at: BrowsePath): Promise<{ stat: FileStat; stream: Readable }> {
    const real = await this.resolve(at);
    const st = await this.lstat(real);
    if (st.type === 'directory') throw new AppError('INVALID_ARGUMENT', `${this.shown(at)} is a folder: download it as an archive`);
    if (st.type !== 'file') throw new AppError('FILE_REFUSED', `${this.shown(at)} is a ${st.type}, not a regular file: it is not read`);
    const stream = await this.streamOut((fifo) => `download ${fishQuote(real)} ${fishQuote(fifo)}`, `reading ${this.shown(at)}`);
    return { stat: st, stream };
  }

  /** A folder (or one file's folder content) as a gzip-compressed tar stream (guestfish tgz-out). */
  async archive(at: BrowsePath): Promise<Readable> {
    const real = await this.resolve(at);
    const st = await this.lstat(real);
    if (st.type !== 'directory') throw new AppError('INVALID_ARGUMENT', `${this.shown(at)} is not a folder (it is a ${st.type}): download a file by itself`);
    return this.streamOut((fifo) => `tgz-out ${fishQuote(real)} ${fishQuote(fifo)}`, `archiving ${this.shown(at)}`);
  }

  /** Ends the appliance, the export and the leases. Idempotent; waits for a stream in progress to be dropped. */
  close(): Promise<void> {
    this.closing ??= this.appliance.close();
    return this.closing;
  }

  /**
   * The appliance path of `at` with every symlink resolved (realpath), refused unless it stays
   * inside the filesystem's mount point; FILE_NOT_FOUND when it does not exist.
   */
  private async resolve(at: BrowsePath): Promise<Buffer> {
    const mp = this.appliance.mounts.get(at.filesystem);
    if (!mp) throw this.noFilesystem(at.filesystem);
    const wanted = joinPath(mp, pathComponents(at.path));
    const r = await this.appliance.fish.run(`realpath ${fishQuote(wanted)}`, STEP_TIMEOUT_MS);
    if (r.error !== undefined) {
      // a symlink to an absolute path or out of the mount resolves against the appliance's
      // empty root, where it usually does not exist: tell that apart from a missing name
      if (/No such file/.test(r.error)) await this.refuseEscapingLink(mp, at);
      throw this.classify(r.error, `${this.shown(at)}`);
    }
    const real = stripNewline(r.output);
    const prefix = Buffer.from(`${mp}/`);
    if (!(real.equals(Buffer.from(mp)) || real.subarray(0, prefix.length).equals(prefix))) {
      throw new AppError('FILE_REFUSED', `${this.shown(at)} leads out of filesystem ${at.filesystem} through a symlink: it is not followed`);
    }
    return real;
  }

  /** Walks the path's components; a symlink whose target is absolute or climbs above the mount is refused. */
  private async refuseEscapingLink(mp: string, at: BrowsePath): Promise<void> {
    const parts = pathComponents(at.path);
    for (let i = 1; i <= parts.length; i++) {
      const p = joinPath(mp, parts.slice(0, i));
      const [s] = parseStats((await this.appliance.fish.run(`lstatns ${fishQuote(p)}`, STEP_TIMEOUT_MS)).output);
      if (!s) return;
      if (s.type !== 'symlink') continue;
      const target = stripNewline((await this.appliance.fish.run(`readlink ${fishQuote(p)}`, STEP_TIMEOUT_MS)).output);
      let depth = i - 1;
      const absolute = target[0] === 0x2f;
      for (const c of target.toString('latin1').split('/')) {
        if (c === '..') depth--;
        else if (c !== '' && c !== '.') depth++;
        if (depth < 0) break;
      }
      if (absolute || depth < 0) {
        throw new AppError('FILE_REFUSED', `${this.shown(at)} leads out of filesystem ${at.filesystem} through the symlink ${displayName(joinPath('', parts.slice(0, i)))} → ${displayName(target)}: it is not followed`);
      }
    }
  }

  private async lstat(real: Buffer): Promise<FileStat> {
    const r = await this.appliance.fish.run(`lstatns ${fishQuote(real)}`, STEP_TIMEOUT_MS);
    if (r.error !== undefined) throw this.classify(r.error, displayName(real));
    const [s] = parseStats(r.output);
    if (!s) throw new AppError('TOOL_FAILED', `guestfish printed no stat for ${displayName(real)}`);
    return s;
  }

  /** Stats of names in `dir`: plain names in batches (lstatnslist), others one by one. */
  private async statMany(dir: Buffer, names: Buffer[]): Promise<Array<FileStat | null>> {
    const out: Array<FileStat | null> = new Array<FileStat | null>(names.length).fill(null);
    let batch: number[] = [];
    let chars = 0;
    const flush = async (): Promise<void> => {
      const taken = batch;
      batch = [];
      chars = 0;
      if (!taken.length) return;
      const list = taken.map((i) => (names[i] as Buffer).toString('latin1')).join(' ');
      const r = await this.appliance.fish.run(`lstatnslist ${fishQuote(dir)} "${list}"`, STEP_TIMEOUT_MS);
      if (r.error !== undefined) throw this.classify(r.error, displayName(dir));
      parseStats(r.output).forEach((s, k) => (out[taken[k] as number] = s));
    };
    for (const [i, n] of names.entries()) {
      if (!plainName(n)) {
        const [s] = parseStats((await this.appliance.fish.run(`lstatns ${fishQuote(Buffer.concat([dir, Buffer.from('/'), n]))}`, STEP_TIMEOUT_MS)).output);
        out[i] = s ?? null;
        continue;
      }
      batch.push(i);
      chars += n.length + 1;
      if (chars > LIST_BATCH_CHARS) await flush();
    }
    await flush();
    return out;
  }

  /**
   * Runs a guestfish command that writes to a host file into a fifo and hands its bytes on as
   * they come. The stream ends only after the command succeeded (a failure half-way destroys
   * it with the error, never a silently short file); a consumer that goes away leaves the fifo
   * drained so guestfish finishes and the session stays usable. The command's timeout is one of
   * inactivity (STREAM_IDLE_MS without a byte through the fifo), not of its length.
   */
  private async streamOut(command: (fifo: string) => string, what: string): Promise<Readable> {
    const fifo = path.join(this.appliance.dir, `xfer-${++this.transfers}`);
    await runTool('mkfifo', ['-m', '600', fifo], { timeoutMs: 10_000 });
    // both ends opened non-blocking (instant: no thread waits on the fifo for a writer): the
    // reader, then a writer of our own, held until the command ended, so the reader sees no end
    // before guestfish opened the fifo, and sees it after guestfish closed it (or never opened it)
    let readFd: number | undefined;
    let writeFd: number;
    try {
      readFd = openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK);
      writeFd = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
    } catch (err) {
      if (readFd !== undefined) closeSync(readFd);
      await fs.rm(fifo, { force: true });
      throw new AppError('TOOL_FAILED', `${what}: the transfer fifo cannot be opened`, { cause: err });
    }
    const src = new net.Socket({ fd: readFd, readable: true, writable: false });
    const ended = new Promise<void>((resolve) => src.once('close', () => resolve()));
    src.on('error', (err) => this.log?.warn({ pointId: this.pointId, what, err: err.message }, 'reading a transfer fifo failed'));
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    const fish = this.appliance.fish;
    const done = fish.run(command(fifo), STREAM_IDLE_MS, { idle: true });
    // bytes out of the fifo are progress; a consumer that reads nothing for that long (its
    // buffer full, guestfish blocked) ends the command too: a session is not held forever
    src.on('data', () => fish.activity());
    let consumerGone = false;
    out.on('close', () => {
      if (!out.writableFinished) {
        consumerGone = true;
        src.unpipe(out);
        src.resume();
      }
    });
    src.pipe(out, { end: false });
    void (async () => {
      let r: { error: string | undefined };
      try {
        r = await done.catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }));
      } finally {
        closeSync(writeFd);
      }
      // guestfish has closed its end (or died): what is left in the fifo is read, then it ends
      await ended;
      await fs.rm(fifo, { force: true });
      if (consumerGone) return;
      if (r.error !== undefined) out.destroy(this.classify(r.error, what));
      else out.end();
    })();
    return out;
  }

  private async fishOk(line: string, timeoutMs: number, what: string): Promise<Buffer> {
    const r = await this.appliance.fish.run(line, timeoutMs);
    if (r.error !== undefined) throw this.classify(r.error, what);
    return r.output;
  }

  /** A guestfish error as the caller should read it. */
  private classify(error: string, what: string): AppError {
    if (/No such file or directory|Not a directory/.test(error)) return new AppError('FILE_NOT_FOUND', `${what}: no such file or folder in the point`);
    // a read error in the appliance ends a download or tgz-out as "cancelled by daemon"
    if (/Input\/output error|Structure needs cleaning|Bad message|corrupt|cancelled by daemon/i.test(error)) {
      this.log?.warn({ pointId: this.pointId, what, error }, 'a browsed file cannot be read');
      return new AppError('FILE_UNREADABLE', `${what}: the point's data there cannot be read (damaged chunks or a corrupt filesystem: ${error})`);
    }
    if (/Too many levels of symbolic links/.test(error)) return new AppError('FILE_REFUSED', `${what}: a symlink loop`);
    return new AppError('TOOL_FAILED', `${what}: ${error}`);
  }

  private noFilesystem(device: string): AppError {
    const have = this.appliance.layout.filesystems.map((f) => `${f.device} (${f.type}${f.mounted ? '' : ', not mounted'})`).join(', ');
    return new AppError('FILE_NOT_FOUND', `the point has no mounted filesystem ${device} (it has: ${have || 'none'})`);
  }

  private shown(at: BrowsePath): string {
    return `${at.filesystem}:${displayName(at.path.length ? at.path : Buffer.from('/'))}`;
  }
}

function stripNewline(b: Buffer): Buffer {
  return b.length && b[b.length - 1] === 0x0a ? b.subarray(0, -1) : b;
}
