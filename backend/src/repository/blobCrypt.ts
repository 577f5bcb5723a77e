/** The BlobCodec's encryption, from the repository key (repoKey.ts): keyed ids and sealed blobs. */
import type { BlobCrypt } from './blobCodec';
import { chunkId, openBlob, repoKeyFromBytes, sealBlobPieces, type RepoKey } from './repoKey';

export function blobCrypt(key: RepoKey | Uint8Array | null | undefined): BlobCrypt | null {
  if (!key) return null;
  const k = key instanceof Uint8Array ? repoKeyFromBytes(Buffer.from(key)) : key;
  return {
    id: (plain) => chunkId(k, Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength)),
    seal: (frame, aad) => sealBlobPieces(k, frame, aad),
    open: (sealed, aad, what) => openBlob(k, sealed, aad, what),
  };
}
