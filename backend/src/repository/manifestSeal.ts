/**
 * The sensitive parts of a manifest in an encrypted repository (FORMAT.md §21): the VM's name,
 * its definition (OVF), the point's and each disk's metadata go into one sealed field; what the
 * repository itself needs without the key's help to stay consistent (ids, times, lock, sizes,
 * index names and hashes) stays in the clear. Upper layers always see the whole Manifest.
 */
import { AppError } from '../errors';
import { manifestAad, openJson, sealJson, type RepoKey } from './repoKey';
import type { Manifest } from './types';

interface SealedParts {
  vmName: string;
  vmDefinition: Manifest['vmDefinition'];
  meta: Manifest['meta'];
  diskMeta: Record<string, Record<string, unknown>>;
}

/** What is written: the manifest with its sensitive parts replaced by `sealed` (no key: as is). */
export function sealManifest(m: Manifest, key: RepoKey | null): Manifest & { sealed?: string } {
  if (!key) return m;
  const diskMeta: Record<string, Record<string, unknown>> = {};
  for (const d of m.disks) if (d.meta) diskMeta[d.device] = d.meta;
  const parts: SealedParts = { vmName: m.vm.name, vmDefinition: m.vmDefinition, meta: m.meta, diskMeta };
  return {
    ...m,
    vm: { ...m.vm, name: '' },
    vmDefinition: null,
    meta: {},
    disks: m.disks.map(({ meta: _meta, ...d }) => d),
    sealed: sealJson(key, parts, manifestAad(m.pointId)),
  };
}

/** The whole manifest from what was read: REPO_KEY_REQUIRED for a sealed one without a key,
 *  REPO_CORRUPT (kind manifest-corrupt) when the sealed part fails authentication. */
export function unsealManifest(raw: Manifest & { sealed?: unknown }, key: RepoKey | null, what: string): Manifest {
  const { sealed, ...clear } = raw;
  if (sealed === undefined) return clear;
  if (typeof sealed !== 'string') throw new AppError('REPO_CORRUPT', `${what}: its sealed part is not text`, { details: { kind: 'manifest-corrupt' } });
  if (!key) throw new AppError('REPO_KEY_REQUIRED', `${what} is encrypted: the repository's passphrase is needed to read it`);
  let parts: SealedParts;
  try {
    parts = openJson(key, sealed, manifestAad(clear.pointId), what) as SealedParts;
  } catch (err) {
    throw new AppError('REPO_CORRUPT', `${what}: its sealed part cannot be opened (changed, or moved from another point)`, { cause: err, details: { kind: 'manifest-corrupt' } });
  }
  return {
    ...clear,
    vm: { ...clear.vm, name: String(parts.vmName ?? '') },
    vmDefinition: parts.vmDefinition ?? null,
    meta: parts.meta ?? {},
    disks: clear.disks.map((d) => (parts.diskMeta?.[d.device] ? { ...d, meta: parts.diskMeta[d.device] } : d)),
  };
}
