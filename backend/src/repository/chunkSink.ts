/**
 * Where a point writer's chunks and indexes go: the chunk files of format 1 (ChunkStore) or the
 * pack session of format 2 (PackSession). DiskWriter and PointWriter see only this.
 */
import type { ChunkStore } from './chunkStore';
import type { PutResult } from './chunkProtocol';
import { encodeIndex } from './diskIndex';
import type { PackSession } from './packSession';
import { buildTree, encodeRoot } from './treeIndex';

export interface IndexBuild {
  virtualSize: number;
  chunkSize: number;
  /** The chunk ids, 32 bytes each (zero id for zero chunks). */
  entries: Buffer;
  /** Format 2: the parent's tree and which leaves changed since (one byte per leaf). */
  baseTree?: Buffer[];
  dirty?: Uint8Array;
}

export interface ChunkSink {
  /** Format 2: chunk ids per index tree node (to track changed leaves); undefined for format 1. */
  readonly fanout: number | undefined;
  put(data: Buffer, what: string): Promise<PutResult>;
  /** Makes every chunk put so far durable (and, format 2, findable): before an index refers to them. */
  flush(): Promise<void>;
  /** Stores what the index needs besides the file (format 2: tree nodes), makes it durable, and
   *  returns the index file's content and, format 2, the tree's node ids. */
  finishIndex(b: IndexBuild): Promise<{ file: Buffer; tree?: Buffer[] }>;
  abort(): Promise<void>;
}

export class ChunkFileSink implements ChunkSink {
  readonly fanout = undefined;
  constructor(
    private readonly store: ChunkStore,
    private readonly chunkTmpDir: string,
  ) {}

  put(data: Buffer, what: string): Promise<PutResult> {
    return this.store.put(data, this.chunkTmpDir, what);
  }

  flush(): Promise<void> {
    return this.store.syncDirs();
  }

  async finishIndex(b: IndexBuild): Promise<{ file: Buffer }> {
    // Chunks must be durable, directory entries included, before an index refers to them.
    await this.store.syncDirs();
    return { file: encodeIndex(b.virtualSize, b.chunkSize, b.entries) };
  }

  async abort(): Promise<void> {}
}

export class PackSink implements ChunkSink {
  constructor(
    private readonly session: PackSession,
    readonly fanout: number,
  ) {}

  put(data: Buffer, what: string): Promise<PutResult> {
    return this.session.put(data, what);
  }

  flush(): Promise<void> {
    return this.session.flush();
  }

  async finishIndex(b: IndexBuild): Promise<{ file: Buffer; tree: Buffer[] }> {
    const built = await buildTree(b.entries, this.fanout, {
      ...(b.baseTree ? { base: b.baseTree } : {}),
      ...(b.dirty ? { dirty: b.dirty } : {}),
      putNode: (content) => this.session.putNode(content),
    });
    // packs sealed, synced and indexed before the root that refers to them is written
    await this.session.flush();
    const count = b.entries.length / 32;
    return { file: encodeRoot({ chunkSize: b.chunkSize, virtualSize: b.virtualSize, count, fanout: this.fanout, top: built.top }), tree: built.nodes };
  }

  abort(): Promise<void> {
    return this.session.abort();
  }
}
