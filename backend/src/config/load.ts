import { constants } from 'fs';
import { access, readFile, stat } from 'fs/promises';
import * as os from 'os';
import * as nodePath from 'path';
import YAML from 'yaml';
import type { z } from 'zod';
import { AppError } from '../errors';
import { DEFAULTS } from './defaults';
import { ENV_REPO_PASSPHRASE } from './passphrase';
import { checkS3, resolveS3, resolveSync } from './s3Load';
import { configFileSchema, PATH_KEYS, type ConfigFile, type ParsedConfigFile, type ServiceConfig } from './schema';

export type DeepPartial<T> = T extends readonly (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
/** What command-line flags may set: any key of the file, highest precedence. */
export type ConfigOverrides = DeepPartial<ConfigFile>;

export interface LoadConfigOptions {
  /** the YAML file; none: environment and defaults only */
  file?: string;
  /** default: process.env */
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigOverrides;
}

type Tree = Record<string, unknown>;

const ENV_PASSWORD = 'OLVM_BACKUP_ENGINE_PASSWORD';
const ENV_PASSWORD_FILE = 'OLVM_BACKUP_ENGINE_PASSWORD_FILE';

/** Environment variable → key; ports become numbers, origins a list (bad values left for the schema to name). */
const ENV_KEYS: [name: string, key: string, parse?: (v: string) => unknown][] = [
  ['OLVM_BACKUP_DATA_DIR', 'dataDir'],
  ['OLVM_BACKUP_ENGINE_URL', 'engine.url'],
  ['OLVM_BACKUP_ENGINE_USER', 'engine.user'],
  [ENV_PASSWORD_FILE, 'engine.passwordFile'],
  ['OLVM_BACKUP_LISTEN_HOST', 'listen.host'],
  ['OLVM_BACKUP_LISTEN_PORT', 'listen.port', (v) => (/^\d+$/.test(v.trim()) ? Number(v) : v)],
  ['OLVM_BACKUP_QMP_DIR', 'hosts.qmpDir'],
  ['OLVM_BACKUP_METHOD', 'backup.method'],
  ['OLVM_BACKUP_CORS_ORIGINS', 'cors.origins', (v) => v.split(',').map((o) => o.trim()).filter((o) => o !== '')],
];

/** Setting one of these in a layer replaces the others from the layers below. */
const EXCLUSIVE = [['hosts.qmpDir', 'hosts.directory']];

const FILES_TO_READ = ['engine.caFile', 'listen.tlsCert', 'listen.tlsKey', 'hosts.directory', 'repository.s3.caFile', 'repository.s3.credentialsFile', 'sync.s3.caFile', 'sync.s3.credentialsFile'] as const;

/**
 * The service's configuration: the YAML file, then the environment, then `overrides` (command-line
 * flags), validated, defaults filled, paths absolute, the engine password read. Any problem is one
 * `CONFIG_INVALID` naming every bad key; the password never appears in it.
 */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<ServiceConfig> {
  const env = opts.env ?? process.env;
  const file = opts.file === undefined ? undefined : nodePath.resolve(opts.file);
  const where = file === undefined ? 'config' : `config ${file}`;
  const sources = new Map<string, string>();

  const fromFile = file === undefined ? {} : withAbsolutePaths(await readYaml(file, where), nodePath.dirname(file));
  const fromEnv = envLayer(env, sources);
  const fromOverrides = withAbsolutePaths(structuredClone(opts.overrides ?? {}), process.cwd());
  for (const key of leafKeys(fromOverrides)) sources.set(key, 'a command-line option');
  // empty required sections, so that a missing one reports its missing keys by name
  const merged = [fromFile, fromEnv, fromOverrides].reduce(mergeLayer, { engine: {}, hosts: {} });

  const parsed = configFileSchema.safeParse(merged);
  if (!parsed.success) throw invalid(where, parsed.error.issues.flatMap((i) => describeIssue(i, merged, sources)));

  const problems: string[] = [];
  const warnings: string[] = [];
  const v = parsed.data;
  const overridesPasswordFile = typeof getKey(fromOverrides, 'engine.passwordFile') === 'string';
  const envPassword = env[ENV_PASSWORD] || undefined;
  if (envPassword !== undefined && env[ENV_PASSWORD_FILE]) problems.push(`${ENV_PASSWORD} and ${ENV_PASSWORD_FILE}: set only one of them`);
  const passwordFile = envPassword !== undefined && !overridesPasswordFile ? undefined : v.engine.passwordFile;
  const password = passwordFile === undefined ? envPassword : await readSecret('engine.passwordFile', passwordFile, problems, warnings);
  if (password === undefined && passwordFile === undefined) problems.push(`engine.passwordFile: the engine password is missing: set engine.passwordFile or ${ENV_PASSWORD}`);
  for (const key of FILES_TO_READ) {
    const p = getKey(v, key);
    if (typeof p === 'string') await access(p, constants.R_OK).catch((err) => problems.push(`${key}: cannot read ${p} (${errCode(err)})`));
  }
  const scrapeToken = v.auth?.scrapeTokenFile === undefined ? undefined : await readSecret('auth.scrapeTokenFile', v.auth.scrapeTokenFile, problems, warnings);
  const repoSecret = await repositoryPassphrase(v, env, typeof getKey(fromOverrides, 'repository.passphraseFile') === 'string', problems, warnings);
  await checkS3(v, env, problems, warnings);
  if (problems.length > 0 || password === undefined) throw invalid(where, problems);
  return resolved(v, { file, env, password, passwordFile, scrapeToken, ...repoSecret, warnings });
}

/**
 * The repository's passphrase, from the environment or repository.passphraseFile, as the engine
 * password (the environment wins over the file's key, a command-line file over both). Read
 * whenever given: an existing repository may be encrypted whatever repository.encryption says
 * (that key only chooses how a new one is made). Asking for encryption without one is a problem.
 */
async function repositoryPassphrase(
  v: ParsedConfigFile,
  env: NodeJS.ProcessEnv,
  fileFromOverrides: boolean,
  problems: string[],
  warnings: string[],
): Promise<{ passphrase: string | undefined; passphraseFile: string | undefined }> {
  const fromEnv = env[ENV_REPO_PASSPHRASE] || undefined;
  const passphraseFile = fromEnv !== undefined && !fileFromOverrides ? undefined : v.repository?.passphraseFile;
  const passphrase = passphraseFile === undefined ? fromEnv : await readSecret('repository.passphraseFile', passphraseFile, problems, warnings);
  const encryption = v.repository?.encryption ?? DEFAULTS.repositoryEncryption;
  if (encryption !== 'none' && passphrase === undefined && passphraseFile === undefined) {
    problems.push(`repository.passphraseFile: repository.encryption is ${encryption} and the passphrase is missing: set repository.passphraseFile or ${ENV_REPO_PASSPHRASE}`);
  }
  if (encryption !== 'none' && v.repository?.format === 1) problems.push(`repository.format: an encrypted repository (repository.encryption ${encryption}) needs format 2`);
  return { passphrase, passphraseFile };
}

function resolved(
  v: ParsedConfigFile,
  r: {
    file: string | undefined;
    env: NodeJS.ProcessEnv;
    password: string;
    passwordFile: string | undefined;
    scrapeToken: string | undefined;
    passphrase: string | undefined;
    passphraseFile: string | undefined;
    warnings: string[];
  },
): ServiceConfig {
  const dataDir = v.dataDir ?? defaultDataDir(r.env);
  const url = v.engine.url.replace(/\/+$/, '');
  const global = v.limits?.global ?? DEFAULTS.limits.global;
  const origins = v.cors?.origins?.map((o) => new URL(o).origin) ?? [new URL(url).origin];
  const { tlsCert, tlsKey } = v.listen ?? {};
  const s3Settings = resolveS3(v, dataDir);
  return {
    file: r.file,
    dataDir,
    engine: {
      url,
      user: v.engine.user,
      password: r.password,
      passwordFile: r.passwordFile,
      caFile: v.engine.caFile,
      timeoutSeconds: v.engine.timeoutSeconds ?? DEFAULTS.engineTimeoutSeconds,
    },
    repository: {
      path: s3Settings?.cacheDir ?? v.repository?.path ?? nodePath.join(dataDir, 'repository'),
      gcSchedule: (v.repository?.gcSchedule ?? DEFAULTS.gcSchedule) === 'off' ? null : (v.repository?.gcSchedule ?? DEFAULTS.gcSchedule),
      gcTimeZone: v.repository?.gcTimeZone ?? DEFAULTS.gcTimeZone,
      format: v.repository?.format ?? DEFAULTS.repositoryFormat,
      encryption: v.repository?.encryption ?? DEFAULTS.repositoryEncryption,
      passphrase: r.passphrase,
      passphraseFile: r.passphraseFile,
      s3: s3Settings,
    },
    sync: resolveSync(v, dataDir, s3Settings),
    catalog: { path: v.catalog?.path ?? nodePath.join(dataDir, 'catalog.sqlite') },
    scratch: { path: v.scratch?.path ?? nodePath.join(dataDir, 'scratch') },
    listen: {
      host: v.listen?.host ?? DEFAULTS.listen.host,
      port: v.listen?.port ?? DEFAULTS.listen.port,
      heartbeatSeconds: v.listen?.heartbeatSeconds ?? 30,
      tls: tlsCert !== undefined && tlsKey !== undefined ? { cert: tlsCert, key: tlsKey } : undefined,
    },
    cors: { origins: [...new Set(origins)] },
    limits: { global, perHost: v.limits?.perHost ?? Math.min(DEFAULTS.limits.perHost, global) },
    hosts: v.hosts.qmpDir !== undefined ? { kind: 'local', qmpDir: v.hosts.qmpDir } : { kind: 'directory', directory: v.hosts.directory ?? '' },
    auth: {
      cacheSeconds: v.auth?.cacheSeconds ?? DEFAULTS.authCacheSeconds,
      permitCacheSeconds: v.auth?.permitCacheSeconds ?? DEFAULTS.permitCacheSeconds,
      backupAdmins: v.auth?.backupAdmins ?? [],
      scrapeToken: r.scrapeToken,
    },
    backup: { method: v.backup?.method ?? DEFAULTS.backupMethod },
    protection: {
      minLockDays: v.protection?.minLockDays ?? DEFAULTS.minLockDays,
      requireObjectLock: v.protection?.requireObjectLock ?? DEFAULTS.requireObjectLock,
      objectLockMode: v.protection?.objectLockMode ?? DEFAULTS.objectLockMode,
    },
    bootCheck: { timeoutSeconds: v.bootCheck?.timeoutSeconds ?? DEFAULTS.bootCheckTimeoutSeconds, expect: v.bootCheck?.expect ?? null },
    fileRestore: { idleSeconds: v.fileRestore?.idleSeconds ?? DEFAULTS.fileRestoreIdleSeconds, maxSessions: v.fileRestore?.maxSessions ?? DEFAULTS.fileRestoreMaxSessions },
    log: { level: v.log?.level ?? DEFAULTS.logLevel },
    warnings: r.warnings,
  };
}

/** root: /var/lib/olvm-backup; anyone else: the XDG data directory. */
function defaultDataDir(env: NodeJS.ProcessEnv): string {
  if (process.getuid?.() === 0) return '/var/lib/olvm-backup';
  const xdg = env['XDG_DATA_HOME'];
  const base = xdg && nodePath.isAbsolute(xdg) ? xdg : nodePath.join(env['HOME'] || os.homedir(), '.local', 'share');
  return nodePath.join(base, 'olvm-backup');
}

async function readYaml(file: string, where: string): Promise<Tree> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = errCode(err);
    throw new AppError('CONFIG_INVALID', `${where}: ${code === 'ENOENT' ? 'no such file' : `cannot read the file (${code})`}`, { cause: err });
  }
  const doc = YAML.parseDocument(text);
  const first = doc.errors[0];
  // only the first line: the rest quotes the file's text
  if (first) throw new AppError('CONFIG_INVALID', `${where}: invalid YAML: ${first.message.split('\n')[0]?.replace(/:$/, '')}`);
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    throw new AppError('CONFIG_INVALID', `${where}: invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (value === null || value === undefined) return {};
  if (!isTree(value)) throw new AppError('CONFIG_INVALID', `${where}: must be a mapping of keys (got ${describeValue(value)})`);
  return value;
}

function envLayer(env: NodeJS.ProcessEnv, sources: Map<string, string>): Tree {
  const layer: Tree = {};
  for (const [name, key, parse] of ENV_KEYS) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    setKey(layer, key, parse ? parse(raw) : raw);
    sources.set(key, name);
  }
  return withAbsolutePaths(layer, process.cwd());
}

/** A secret kept in a file of its own (the engine password, the scrape token): its text without
 *  trailing newlines; a problem for a missing or empty file, a warning for one others may read. */
async function readSecret(key: string, file: string, problems: string[], warnings: string[]): Promise<string | undefined> {
  try {
    const st = await stat(file);
    if (!st.isFile()) {
      problems.push(`${key}: ${file} is not a file`);
      return undefined;
    }
    if ((st.mode & 0o044) !== 0) {
      warnings.push(`${key}: ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
    }
    const secret = (await readFile(file, 'utf8')).replace(/(\r?\n)+$/, '');
    if (secret === '') problems.push(`${key}: ${file} is empty`);
    return secret === '' ? undefined : secret;
  } catch (err) {
    problems.push(`${key}: cannot read ${file} (${errCode(err)})`);
    return undefined;
  }
}

function invalid(where: string, problems: string[]): AppError {
  return new AppError('CONFIG_INVALID', `${where}: ${problems.join('; ')}`, { details: { problems } });
}

const ENV_HINTS = new Map(ENV_KEYS.map(([name, key]) => [key, name]));

/** `limits.perHost: must be a positive integer (got "two")`; values are shown only when plain and credential-free. */
function describeIssue(issue: z.core.$ZodIssue, input: Tree, sources: Map<string, string>): string[] {
  const key = dottedKey(issue.path);
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `unknown key "${key === '' ? k : `${key}.${k}`}"`);
  // a secret put where it must not be: named, never shown
  const value = issue.code === 'custom' && issue.params?.['secret'] === true ? undefined : getPath(input, issue.path);
  const source = sourceOf(issue.path, sources);
  if (value === undefined) {
    const hint = ENV_HINTS.get(key);
    return [`${key || 'top level'}: ${issue.message}${hint !== undefined && issue.message === 'is required' ? ` (or set ${hint})` : ''}`];
  }
  // "(got a mapping)" helps only when a mapping was not expected
  const shown = isTree(value) || Array.isArray(value) ? (issue.code === 'invalid_type' ? describeValue(value) : undefined) : describeValue(value);
  const got = shown === undefined ? (source ? ` (from ${source})` : '') : ` (got ${shown}${source ? ` from ${source}` : ''})`;
  return [`${key || 'top level'}: ${issue.message}${got}`];
}

function describeValue(value: unknown): string | undefined {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    if (/\/\/[^/]*@/.test(value)) return undefined; // user:secret@host
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  }
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}

function dottedKey(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc === '' ? String(p) : `${acc}.${String(p)}`), '');
}

function sourceOf(path: readonly PropertyKey[], sources: Map<string, string>): string | undefined {
  const names = path.filter((p): p is string => typeof p === 'string');
  for (let n = names.length; n > 0; n--) {
    const s = sources.get(names.slice(0, n).join('.'));
    if (s !== undefined) return s;
  }
  return undefined;
}

/** Deep merge of plain mappings, `upper` winning; lists are replaced, undefined is "not set". */
function mergeLayer(lower: Tree, upper: Tree): Tree {
  const base = structuredClone(lower);
  for (const group of EXCLUSIVE) {
    if (group.some((k) => getKey(upper, k) !== undefined)) for (const k of group) deleteKey(base, k);
  }
  return mergeTrees(base, upper);
}

function mergeTrees(lower: Tree, upper: Tree): Tree {
  const out: Tree = { ...lower };
  for (const [k, v] of Object.entries(upper)) {
    if (v === undefined) continue;
    const below = out[k];
    out[k] = isTree(v) && isTree(below) ? mergeTrees(below, v) : v;
  }
  return out;
}

function withAbsolutePaths(tree: Tree, base: string): Tree {
  for (const key of PATH_KEYS) {
    const p = getKey(tree, key);
    if (typeof p === 'string' && p !== '') setKey(tree, key, nodePath.resolve(base, p));
  }
  return tree;
}

function leafKeys(tree: Tree, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([k, v]) => {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (v === undefined) return [];
    return isTree(v) ? leafKeys(v, key) : [key];
  });
}

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getPath(tree: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = tree;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function getKey(tree: unknown, key: string): unknown {
  return getPath(tree, key.split('.'));
}

function setKey(tree: Tree, key: string, value: unknown): void {
  const parts = key.split('.');
  const last = parts.pop() as string;
  let cur = tree;
  for (const p of parts) {
    const next = cur[p];
    if (!isTree(next)) cur[p] = {};
    cur = cur[p] as Tree;
  }
  cur[last] = value;
}

function deleteKey(tree: Tree, key: string): void {
  const parts = key.split('.');
  const parent = getPath(tree, parts.slice(0, -1));
  if (isTree(parent)) delete parent[parts[parts.length - 1] as string];
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.message : String(err));
}
