import { execFileSync } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';

/** dist/backend/src/util → the project root (the installed app's root, /usr/lib/olvm-backup). */
const ROOT = path.resolve(__dirname, '../../../..');

/**
 * What `npm run package` writes beside package.json (packaging/build.sh): the version, the git
 * commit it was built from, and a digest of the app's files, which the RPM's scriptlets compare
 * to decide whether a running service runs other code than the installed one.
 */
export interface BuildInfo {
  version: string;
  gitHash: string | undefined;
  dirty: boolean;
  /** `0.1.0+g1a2b3c4` (semver build metadata; `.dirty` when built from a modified tree) */
  stamp: string;
}

let cached: string | undefined;

/**
 * The product version with the commit it was built from, e.g. `0.1.0+g1a2b3c4`: from the
 * build-info.json of a packaged build, else (a git checkout) from git itself, else the bare
 * package.json version.
 */
export function productVersion(): string {
  cached ??= readStamp();
  return cached;
}

function readStamp(): string {
  const info = readBuildInfo();
  if (info) return info.stamp;
  const version = packageVersion();
  const git = existsSync(path.join(ROOT, '.git')) ? gitState() : undefined;
  return git ? versionStamp(version, git.hash, git.dirty) : version;
}

export function versionStamp(version: string, gitHash: string, dirty: boolean): string {
  return `${version}+g${gitHash}${dirty ? '.dirty' : ''}`;
}

export function readBuildInfo(root = ROOT): BuildInfo | undefined {
  try {
    const b = JSON.parse(readFileSync(path.join(root, 'build-info.json'), 'utf8')) as Partial<BuildInfo>;
    return typeof b.stamp === 'string' && typeof b.version === 'string' ? (b as BuildInfo) : undefined;
  } catch {
    return undefined;
  }
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A development checkout only (never an installed build): one short git call at start-up. */
function gitState(): { hash: string; dirty: boolean } | undefined {
  const git = (...args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim();
  try {
    const hash = git('rev-parse', '--short=10', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return /^[0-9a-f]+$/.test(hash) ? { hash, dirty } : undefined;
  } catch {
    return undefined;
  }
}
