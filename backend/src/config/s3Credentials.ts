/**
 * Where the S3 credentials of an object-storage repository come from, checked before anything
 * is opened so that a missing one is one clear message naming the places looked at instead of
 * the SDK's "could not load credentials from any providers" after its slow probes. Credentials
 * are never in the service's YAML nor in a command-line value: the environment
 * (AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, optionally AWS_SESSION_TOKEN) or an AWS-format
 * credentials file (a named file, AWS_SHARED_CREDENTIALS_FILE, or ~/.aws/credentials) with a
 * profile (given, AWS_PROFILE, or `default`). Only whether they are there is checked here; the
 * store says whether they are right.
 */
import { readFile } from 'fs/promises';
import * as os from 'os';
import * as nodePath from 'path';
import { AppError } from '../errors';

export const ENV_ACCESS_KEY = 'AWS_ACCESS_KEY_ID';
export const ENV_SECRET_KEY = 'AWS_SECRET_ACCESS_KEY';
export const ENV_CREDENTIALS_FILE = 'AWS_SHARED_CREDENTIALS_FILE';
export const ENV_PROFILE = 'AWS_PROFILE';

/** What was found: the environment's pair, or a file and the profile in it. */
export type S3CredentialSource = { source: 'environment' } | { source: 'file'; file: string; profile: string };

export interface FindS3CredentialsOptions {
  /** A credentials file named by the operator (repository.s3.credentialsFile): only it is read. */
  credentialsFile?: string;
  /** The profile in the file (--s3-profile, repository.s3.profile). */
  profile?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * The credentials' source, or CONFIG_INVALID (service) / INVALID_ARGUMENT (CLI: `code`) naming
 * the environment variables and the file that were looked at. A named file wins over the
 * environment (the operator said so); otherwise the environment's pair wins over the default file.
 */
export async function findS3Credentials(o: FindS3CredentialsOptions = {}, code: 'INVALID_ARGUMENT' | 'CONFIG_INVALID' = 'INVALID_ARGUMENT'): Promise<S3CredentialSource> {
  const env = o.env ?? process.env;
  const profile = o.profile ?? (env[ENV_PROFILE] || undefined) ?? 'default';
  if (o.credentialsFile === undefined) {
    const access = env[ENV_ACCESS_KEY] || undefined;
    const secret = env[ENV_SECRET_KEY] || undefined;
    if (access !== undefined && secret !== undefined) return { source: 'environment' };
    if ((access === undefined) !== (secret === undefined)) {
      throw new AppError(code, `S3 credentials: ${access === undefined ? ENV_SECRET_KEY : ENV_ACCESS_KEY} is set but ${access === undefined ? ENV_ACCESS_KEY : ENV_SECRET_KEY} is not: set both`);
    }
  }
  const file = o.credentialsFile ?? (env[ENV_CREDENTIALS_FILE] || undefined) ?? nodePath.join(env['HOME'] || os.homedir(), '.aws', 'credentials');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? String(err);
    const where =
      o.credentialsFile !== undefined
        ? `the credentials file ${file} cannot be read (${why})`
        : `set ${ENV_ACCESS_KEY} and ${ENV_SECRET_KEY}, or write an AWS credentials file at ${file} (${why}; ${ENV_CREDENTIALS_FILE} names another) with [${profile}] aws_access_key_id and aws_secret_access_key`;
    throw new AppError(code, `no S3 credentials: ${where}`, { cause: err });
  }
  const section = iniSection(text, profile);
  if (section === undefined) throw new AppError(code, `no S3 credentials: ${file} has no [${profile}] profile${o.profile === undefined ? ` (choose one with --s3-profile or ${ENV_PROFILE})` : ''}`);
  const missing = ['aws_access_key_id', 'aws_secret_access_key'].filter((k) => !section.get(k));
  if (missing.length > 0) throw new AppError(code, `no S3 credentials: profile [${profile}] of ${file} lacks ${missing.join(' and ')}`);
  return { source: 'file', file, profile };
}

/** The keys of one `[name]` section of an INI file (`key = value`, `#`/`;` comments). */
function iniSection(text: string, name: string): Map<string, string> | undefined {
  let current: string | undefined;
  let found: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (head) {
      current = head[1];
      if (current === name) found ??= new Map();
      continue;
    }
    const eq = line.indexOf('=');
    if (current === name && found && eq > 0) found.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return found;
}
