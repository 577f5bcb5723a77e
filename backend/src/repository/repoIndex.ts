/**
 * The repository index of format 2 (FORMAT.md §18): immutable files under index/, each naming
 * packs and the blobs in them, each named by the SHA-256 of its content. The union of all files
 * (less those another file supersedes) tells where every stored blob is. RepoIndex is that
 * union in memory, loaded once and refreshed with only the files added since.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { sha256Hex } from './digest';
import { isErrno, writeFileAtomic } from './atomicFile';
import { INDEX_DIR, indexFilePath, isHexDigest } from './layout';
import { isBlobType, type BlobType, type PackEntry } from './pack';
import { quarantineKey, readPackQuarantine } from './packQuarantine';

export const INDEX_FILE_MAGIC = Buffer.from('OLVBRIDX', 'latin1');
export const INDEX_FILE_VERSION = 2;
const HEADER = 32;
const ENTRY = 56;

/** Where a blob is stored. */
export interface BlobLocation {
  pack: string;
  offset: number;
  storedLength: number;
  plainLength: number;
  type: BlobType;
}

export interface IndexFileContent {
  /** Packs and their blobs. */
  packs: Array<{ name: string; entries: PackEntry[] }>;
  /** Index files this one replaces (the garbage collection's consolidated index). */
  supersedes: string[];
}

export function encodeIndexFile(content: IndexFileContent): Buffer {
  const entryCount = content.packs.reduce((n, p) => n + p.entries.length, 0);
  const buf = Buffer.alloc(HEADER + 32 * (content.packs.length + content.supersedes.length) + ENTRY * entryCount);
  INDEX_FILE_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(INDEX_FILE_VERSION, 8);
  buf.writeUInt32LE(content.packs.length, 16);
  buf.writeUInt32LE(content.supersedes.length, 20);
  buf.writeBigUInt64LE(BigInt(entryCount), 24);
  let o = HEADER;
  for (const p of content.packs) o += Buffer.from(p.name, 'hex').copy(buf, o);
  for (const s of content.supersedes) o += Buffer.from(s, 'hex').copy(buf, o);
  content.packs.forEach((p, packNo) => {
    for (const e of p.entries) {
      e.id.copy(buf, o);
      buf.writeUInt32LE(packNo, o + 32);
      buf.writeUInt32LE(e.storedLength, o + 36);
      buf.writeBigUInt64LE(BigInt(e.offset), o + 40);
      buf.writeUInt32LE(e.plainLength, o + 48);
      buf.writeUInt8(e.type, o + 52);
      o += ENTRY;
    }
  });
  return buf;
}

export function parseIndexFile(buf: Buffer, what: string): IndexFileContent {
  const bad = (why: string): AppError => new AppError('REPO_CORRUPT', `${what}: ${why}`, { details: { kind: 'repo-index-corrupt' } });
  if (buf.length < HEADER || !buf.subarray(0, 8).equals(INDEX_FILE_MAGIC)) throw bad('not a repository index file');
  if (buf.readUInt32LE(8) !== INDEX_FILE_VERSION) throw bad(`unsupported version ${buf.readUInt32LE(8)}`);
  const packCount = buf.readUInt32LE(16);
  const supCount = buf.readUInt32LE(20);
  const entryCount = Number(buf.readBigUInt64LE(24));
  if (buf.length !== HEADER + 32 * (packCount + supCount) + ENTRY * entryCount) throw bad('length does not match its counts');
  let o = HEADER;
  const packs: IndexFileContent['packs'] = [];
  for (let i = 0; i < packCount; i++, o += 32) packs.push({ name: buf.toString('hex', o, o + 32), entries: [] });
  const supersedes: string[] = [];
  for (let i = 0; i < supCount; i++, o += 32) supersedes.push(buf.toString('hex', o, o + 32));
  for (let i = 0; i < entryCount; i++, o += ENTRY) {
    const packNo = buf.readUInt32LE(o + 32);
    const pack = packs[packNo];
    const type = buf.readUInt8(o + 52);
    if (!pack) throw bad(`entry ${i} names pack ${packNo} of ${packCount}`);
    if (!isBlobType(type)) throw bad(`entry ${i} has unknown type ${type}`);
    pack.entries.push({
      id: Buffer.from(buf.subarray(o, o + 32)),
      storedLength: buf.readUInt32LE(o + 36),
      offset: Number(buf.readBigUInt64LE(o + 40)),
      plainLength: buf.readUInt32LE(o + 48),
      type,
    });
  }
  return { packs, supersedes };
}

/** Writes an index file (atomic, durable) and returns its name. */
export async function writeIndexFile(root: string, content: IndexFileContent): Promise<string> {
  const buf = encodeIndexFile(content);
  const name = sha256Hex(buf);
  await fs.mkdir(path.join(root, INDEX_DIR), { recursive: true });
  await writeFileAtomic(indexFilePath(root, name), buf);
  return name;
}

/** Index file names present now (hex names only: temporaries start with a dot). */
export async function listIndexFiles(root: string): Promise<string[]> {
  try {
    return (await fs.readdir(path.join(root, INDEX_DIR))).filter(isHexDigest).sort();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw new AppError('REPO_IO_ERROR', `listing ${path.join(root, INDEX_DIR)} failed`, { cause: err });
  }
}

/** Reads one index file, checking its content against its name. */
export async function readIndexFile(root: string, name: string): Promise<IndexFileContent> {
  const file = indexFilePath(root, name);
  const buf = await fs.readFile(file);
  if (sha256Hex(buf) !== name) throw new AppError('REPO_CORRUPT', `repository index file ${file} does not match its name (damaged)`, { details: { kind: 'repo-index-corrupt', file: name } });
  return parseIndexFile(buf, `repository index file ${file}`);
}

/** The union of the index files in memory. */
export class RepoIndex {
  private byId = new Map<string, BlobLocation[]>();
  private loaded = new Set<string>();
  /** Index files that could not be read: their blobs are unknown (verify names them). */
  private problemFiles = new Map<string, string>();
  /** Refreshes run one after the other; each caller's starts after its call. */
  private refreshing: Promise<void> = Promise.resolve();
  /** Blob copies verify found corrupt (quarantine/, FORMAT.md §20): `<id hex>.<pack>`. */
  private quarantined = new Set<string>();
  private readonly quarantineRecords = new Map<string, number | null>();

  constructor(private readonly root: string) {}

  /** Reads the index files added since the last call; all of them again if some went away
   *  (a garbage collection replaced them). Also the quarantine records, every time. */
  refresh(): Promise<void> {
    const next = this.refreshing.then(() => this.doRefresh());
    this.refreshing = next.catch(() => undefined);
    return next;
  }

  /** Index files that could not be read, with why. */
  get problems(): ReadonlyMap<string, string> {
    return this.problemFiles;
  }

  private async doRefresh(): Promise<void> {
    const quarantined = await readPackQuarantine(this.root, this.quarantineRecords);
    const names = await listIndexFiles(this.root);
    const present = new Set(names);
    // files gone (a collection replaced them): everything is read again into a new map, swapped
    // in whole, so that no reader or writer sees a half-loaded index meanwhile
    const gone = [...this.loaded].some((n) => !present.has(n));
    const byId = gone ? new Map<string, BlobLocation[]>() : this.byId;
    const loaded = gone ? new Set<string>() : this.loaded;
    const problems = gone ? new Map<string, string>() : this.problemFiles;
    const contents = new Map<string, IndexFileContent>();
    for (const name of names.filter((n) => !loaded.has(n) && !problems.has(n))) {
      try {
        contents.set(name, await readIndexFile(this.root, name));
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue; // replaced meanwhile; the next refresh sees its successor
        problems.set(name, (err as Error).message);
      }
    }
    const superseded = new Set<string>();
    for (const c of contents.values()) for (const s of c.supersedes) superseded.add(s);
    for (const [name, c] of contents) {
      loaded.add(name);
      if (superseded.has(name)) continue;
      for (const p of c.packs) addLocations(byId, p.name, p.entries);
    }
    this.byId = byId;
    this.loaded = loaded;
    this.problemFiles = problems;
    this.quarantined = quarantined;
  }

  /** Every known location of a blob (normally one; a blob two writers stored at once has two). */
  find(id: Buffer): readonly BlobLocation[] {
    return this.byId.get(id.toString('latin1')) ?? [];
  }

  /** Whether verify recorded this copy of the blob as corrupt (as of the last refresh). */
  isQuarantined(id: Buffer, pack: string): boolean {
    return this.quarantined.size > 0 && this.quarantined.has(quarantineKey(id.toString('hex'), pack));
  }

  has(id: Buffer): boolean {
    return this.byId.has(id.toString('latin1'));
  }

  get size(): number {
    return this.byId.size;
  }

  /** Names of the index files read. */
  get files(): string[] {
    return [...this.loaded];
  }

  /** Every blob with its locations. */
  *entries(): IterableIterator<[Buffer, readonly BlobLocation[]]> {
    for (const [k, v] of this.byId) yield [Buffer.from(k, 'latin1'), v];
  }

  /** @internal Adds a pack sealed and indexed by this process. */
  addPack(pack: string, entries: readonly PackEntry[]): void {
    addLocations(this.byId, pack, entries);
  }

  /** @internal Forgets a pack (deleted by the garbage collection). */
  dropPacks(packs: ReadonlySet<string>): void {
    for (const [k, list] of this.byId) {
      const kept = list.filter((l) => !packs.has(l.pack));
      if (kept.length === 0) this.byId.delete(k);
      else if (kept.length !== list.length) this.byId.set(k, kept);
    }
  }
}

function addLocations(byId: Map<string, BlobLocation[]>, pack: string, entries: readonly PackEntry[]): void {
  for (const e of entries) {
    const key = e.id.toString('latin1');
    const loc: BlobLocation = { pack, offset: e.offset, storedLength: e.storedLength, plainLength: e.plainLength, type: e.type };
    const list = byId.get(key);
    if (!list) byId.set(key, [loc]);
    else if (!list.some((l) => l.pack === pack && l.offset === e.offset)) list.push(loc);
  }
}
