/**
 * Disk indexes of format 2 (FORMAT.md §19): the list of a disk's chunk ids cut into nodes of
 * `fanout` ids, nodes stored as blobs (content-addressed, so the nodes a point shares with its
 * parent are stored once), nodes of nodes above them, and a small root file in the point that
 * lists the top level. A point's index therefore costs what changed, and reading it is still a
 * direct lookup (no chain of deltas). In memory an index is the flat list (DiskIndex) plus the
 * node ids of each level, so that the next point rebuilds only the nodes it changed.
 */
import { AppError } from '../errors';
import { DIGEST_LENGTH, ZERO_DIGEST } from './digest';
import { chunkCountFor } from './diskIndex';

export const ROOT_MAGIC = Buffer.from('OLVBIDX2', 'latin1');
export const ROOT_VERSION = 2;
export const ROOT_HEADER_SIZE = 48;

/** Node counts per level, leaves first; the root lists the last level's ids. */
export function treeLevels(count: number, fanout: number): number[] {
  if (count === 0) return [];
  const levels: number[] = [Math.ceil(count / fanout)];
  while ((levels[levels.length - 1] as number) > fanout) levels.push(Math.ceil((levels[levels.length - 1] as number) / fanout));
  return levels;
}

/** Ids (32 bytes each) of every node of every level, leaves first. */
export type TreeNodes = Buffer[];

export interface TreeRoot {
  chunkSize: number;
  virtualSize: number;
  count: number;
  fanout: number;
  /** Ids of the top level's nodes. */
  top: Buffer;
}

export function encodeRoot(r: TreeRoot): Buffer {
  const levels = treeLevels(r.count, r.fanout);
  const buf = Buffer.alloc(ROOT_HEADER_SIZE + r.top.length);
  ROOT_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(ROOT_VERSION, 8);
  buf.writeUInt32LE(r.chunkSize, 12);
  buf.writeBigUInt64LE(BigInt(r.virtualSize), 16);
  buf.writeBigUInt64LE(BigInt(r.count), 24);
  buf.writeUInt32LE(r.fanout, 32);
  buf.writeUInt32LE(levels.length, 36);
  buf.writeBigUInt64LE(BigInt(r.top.length / DIGEST_LENGTH), 40);
  r.top.copy(buf, ROOT_HEADER_SIZE);
  return buf;
}

export function parseRoot(buf: Buffer, what: string): TreeRoot {
  const bad = (why: string): AppError => new AppError('REPO_CORRUPT', `${what}: ${why}`, { details: { kind: 'index-corrupt' } });
  if (buf.length < ROOT_HEADER_SIZE || !buf.subarray(0, 8).equals(ROOT_MAGIC)) throw bad('not a format-2 index');
  if (buf.readUInt32LE(8) !== ROOT_VERSION) throw bad(`unsupported index version ${buf.readUInt32LE(8)}`);
  const chunkSize = buf.readUInt32LE(12);
  const virtualSize = Number(buf.readBigUInt64LE(16));
  const count = Number(buf.readBigUInt64LE(24));
  const fanout = buf.readUInt32LE(32);
  const depth = buf.readUInt32LE(36);
  const topCount = Number(buf.readBigUInt64LE(40));
  if (chunkSize === 0 || (chunkSize & (chunkSize - 1)) !== 0) throw bad(`invalid chunk size ${chunkSize}`);
  if (!Number.isSafeInteger(virtualSize) || count !== chunkCountFor(virtualSize, chunkSize)) throw bad('chunk count does not match the virtual size');
  if (fanout < 2 || fanout > 65536) throw bad(`invalid fanout ${fanout}`);
  const levels = treeLevels(count, fanout);
  if (depth !== levels.length || topCount !== (levels[levels.length - 1] ?? 0)) throw bad('tree shape does not match the chunk count');
  if (buf.length !== ROOT_HEADER_SIZE + topCount * DIGEST_LENGTH) throw bad(`length ${buf.length} does not match ${topCount} top nodes`);
  return { chunkSize, virtualSize, count, fanout, top: Buffer.from(buf.subarray(ROOT_HEADER_SIZE)) };
}

/** Entries (children) of node `j` of a level with `below` entries in the level under it. */
function nodeEntries(j: number, below: number, fanout: number): number {
  return Math.min(fanout, below - j * fanout);
}

function isZeroId(buf: Buffer, off: number): boolean {
  return buf.compare(ZERO_DIGEST, 0, DIGEST_LENGTH, off, off + DIGEST_LENGTH) === 0;
}

/**
 * Reads a tree top-down: `getNode(id, length)` returns a node's checked content. Returns the
 * chunk ids (flat) and the node ids of each level.
 */
export async function readTree(root: TreeRoot, getNode: (id: Buffer, length: number) => Promise<Buffer>): Promise<{ digests: Buffer; nodes: TreeNodes }> {
  const levels = treeLevels(root.count, root.fanout);
  const nodes: TreeNodes = levels.map((n) => Buffer.alloc(n * DIGEST_LENGTH));
  if (levels.length === 0) return { digests: Buffer.alloc(0), nodes };
  root.top.copy(nodes[levels.length - 1] as Buffer);
  const digests = Buffer.alloc(root.count * DIGEST_LENGTH);
  for (let level = levels.length - 1; level >= 0; level--) {
    const ids = nodes[level] as Buffer;
    const below = level === 0 ? root.count : (levels[level - 1] as number);
    const into = level === 0 ? digests : (nodes[level - 1] as Buffer);
    const n = levels[level] as number;
    await forEachLimited(n, 16, async (j) => {
      if (isZeroId(ids, j * DIGEST_LENGTH)) return; // all children zero: nothing stored
      const len = nodeEntries(j, below, root.fanout) * DIGEST_LENGTH;
      const content = await getNode(ids.subarray(j * DIGEST_LENGTH, (j + 1) * DIGEST_LENGTH), len);
      if (content.length !== len) throw new AppError('REPO_CORRUPT', `index node ${j} of level ${level} has ${content.length} bytes, expected ${len}`, { details: { kind: 'index-corrupt' } });
      content.copy(into, j * root.fanout * DIGEST_LENGTH);
    });
  }
  return { digests, nodes };
}

/**
 * Builds the tree of `digests` bottom-up. A node of level 0 whose leaf is not in `dirty` keeps
 * the base's id; upper nodes are rebuilt (there are few). `putNode(content)` stores a node (or
 * finds it stored) and returns its id; a node whose children are all zero gets the zero id and
 * is not stored.
 */
export async function buildTree(
  digests: Buffer,
  fanout: number,
  opts: { base?: TreeNodes; dirty?: Uint8Array; putNode: (content: Buffer) => Promise<Buffer> },
): Promise<{ top: Buffer; nodes: TreeNodes }> {
  const count = digests.length / DIGEST_LENGTH;
  const levels = treeLevels(count, fanout);
  const nodes: TreeNodes = [];
  for (let level = 0; level < levels.length; level++) {
    const below = level === 0 ? digests : (nodes[level - 1] as Buffer);
    const n = levels[level] as number;
    const ids = Buffer.alloc(n * DIGEST_LENGTH);
    const base = level === 0 && opts.base?.[0]?.length === ids.length ? opts.base[0] : undefined;
    const belowCount = below.length / DIGEST_LENGTH;
    await forEachLimited(n, 8, async (j) => {
      if (base && opts.dirty && opts.dirty[j] === 0) {
        base.copy(ids, j * DIGEST_LENGTH, j * DIGEST_LENGTH, (j + 1) * DIGEST_LENGTH);
        return;
      }
      const start = j * fanout * DIGEST_LENGTH;
      const content = below.subarray(start, start + nodeEntries(j, belowCount, fanout) * DIGEST_LENGTH);
      if (content.every((b) => b === 0)) return; // zero id
      (await opts.putNode(Buffer.from(content))).copy(ids, j * DIGEST_LENGTH);
    });
    nodes.push(ids);
  }
  return { top: Buffer.from(nodes[nodes.length - 1] ?? Buffer.alloc(0)), nodes };
}

/** Runs `fn(0..n-1)` with at most `limit` at once. */
async function forEachLimited(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
}
