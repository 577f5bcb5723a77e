/**
 * The repository formats the suites run on (FORMAT.md): version 1 (a file per chunk), version 2
 * (packs, tree indexes) and version 2 encrypted. A suite that checks what every repository must
 * do runs once per format through `describe.each(REPO_FORMATS)`; `initRepo` makes one.
 */
import { Repository, type InitOptions } from '../../backend/src/repository';

export interface RepoFormat {
  /** For test titles: `v1`, `v2`, `v2-encrypted`. */
  name: string;
  init: InitOptions;
  /** What opens the repository again (the passphrase of an encrypted one). */
  open: { passphrase?: string };
}

export const TEST_PASSPHRASE = 'correct horse battery staple';

/** A low scrypt cost: the key file is still a real one, unwrapped by the real code. */
const TEST_SCRYPT = { N: 1024, r: 8, p: 1 };

export const V1: RepoFormat = { name: 'v1', init: { version: 1 }, open: {} };
export const V2: RepoFormat = { name: 'v2', init: { version: 2 }, open: {} };
export const V2_ENCRYPTED: RepoFormat = {
  name: 'v2-encrypted',
  init: { version: 2, encryption: 'aes-256-gcm', passphrase: TEST_PASSPHRASE, scrypt: TEST_SCRYPT },
  open: { passphrase: TEST_PASSPHRASE },
};

export const REPO_FORMATS: readonly RepoFormat[] = [V1, V2, V2_ENCRYPTED];

/** A new repository of `format` in `dir`, with `extra` options (chunk size, workers…). */
export function initRepo(dir: string, format: RepoFormat, extra: InitOptions = {}): Promise<Repository> {
  return Repository.init(dir, { ...format.init, ...extra });
}

export function openRepo(dir: string, format: RepoFormat, extra: { workers?: number } = {}): Promise<Repository> {
  return Repository.open(dir, { ...format.open, ...extra });
}
