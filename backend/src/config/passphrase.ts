/**
 * The passphrase of an encrypted repository, from where an operator or the service keeps it: a
 * file of its own (`--passphrase-file FILE`) or the environment (OLVM_BACKUP_REPO_PASSPHRASE),
 * the same two ways as the engine password (load.ts). The file wins over the environment, as a
 * command-line flag wins over the environment there. Its text without trailing newlines is the
 * passphrase; the passphrase itself never appears in a message.
 */
import { readFile, stat } from 'fs/promises';
import { AppError } from '../errors';

export const ENV_REPO_PASSPHRASE = 'OLVM_BACKUP_REPO_PASSPHRASE';
export const ENV_REPO_NEW_PASSPHRASE = 'OLVM_BACKUP_REPO_NEW_PASSPHRASE';

export interface ReadPassphraseOptions {
  /** the file holding it (a command's --passphrase-file) */
  file?: string;
  /** default: process.env */
  env?: NodeJS.ProcessEnv;
  /** 'new': the passphrase a key is being made for (--new-passphrase-file or
   *  OLVM_BACKUP_REPO_NEW_PASSPHRASE); missing is then INVALID_ARGUMENT, not REPO_KEY_REQUIRED */
  purpose?: 'open' | 'new';
  /** told about a file that group or others may read */
  onWarning?: (message: string) => void;
}

/** The passphrase; REPO_KEY_REQUIRED (INVALID_ARGUMENT for a new one) naming both ways to give it
 *  when neither gives a non-empty one; INVALID_ARGUMENT when the file cannot be read. */
export async function readPassphrase(opts: ReadPassphraseOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const isNew = opts.purpose === 'new';
  const option = isNew ? '--new-passphrase-file' : '--passphrase-file';
  const envName = isNew ? ENV_REPO_NEW_PASSPHRASE : ENV_REPO_PASSPHRASE;
  const missing = (why: string): AppError =>
    new AppError(isNew ? 'INVALID_ARGUMENT' : 'REPO_KEY_REQUIRED', `${why}: give ${option} FILE or set ${envName}`);
  if (opts.file === undefined) {
    const fromEnv = env[envName];
    if (fromEnv === undefined || fromEnv === '') throw missing(isNew ? 'a new passphrase is needed' : 'the repository is encrypted and no passphrase was given');
    return fromEnv;
  }
  let text: string;
  try {
    const st = await stat(opts.file);
    if (!st.isFile()) throw new AppError('INVALID_ARGUMENT', `${option}: ${opts.file} is not a file`);
    if ((st.mode & 0o044) !== 0) {
      opts.onWarning?.(`${option}: ${opts.file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
    }
    text = await readFile(opts.file, 'utf8');
  } catch (err) {
    if (err instanceof AppError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AppError('INVALID_ARGUMENT', `${option}: cannot read ${opts.file} (${code})`, { cause: err });
  }
  const passphrase = text.replace(/(\r?\n)+$/, '');
  if (passphrase === '') throw missing(`${option}: ${opts.file} is empty`);
  return passphrase;
}
