import { readFileSync } from 'fs';
import * as path from 'path';
import YAML from 'yaml';

/** What setup decides; everything else in the file (limits, log level, comments) is left as it is. */
export interface ConfigSettings {
  dataDir: string;
  engine: { url: string; user: string; passwordFile: string; caFile: string | undefined };
  /** null: the repository is on object storage (repository.s3, left as it is) */
  repositoryPath: string | null;
  catalogPath: string;
  scratchPath: string;
  listen: { host: string; port: number };
  corsOrigins: string[];
  hosts: { qmpDir: string } | { directory: string };
  /** backup.method */
  backupMethod: string;
}

/** The commented example the RPM installs as /etc/olvm-backup/config.yaml (also in the app's tree). */
const TEMPLATE = path.resolve(__dirname, '../../../../packaging/config.example.yaml');

/** The placeholder origin of the shipped example: replaced, never kept beside the real one. */
const EXAMPLE_ORIGIN = 'https://engine.example.com';

/** The values of an existing config file, loosely: defaults for this run of setup. */
export function readExisting(text: string | undefined): Partial<Record<string, unknown>> & { get(key: string): unknown } {
  const tree = text === undefined ? {} : ((YAML.parse(text) as Record<string, unknown> | null) ?? {});
  return {
    ...tree,
    get(key: string): unknown {
      let cur: unknown = tree;
      for (const k of key.split('.')) cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[k] : undefined;
      return cur;
    },
  };
}

/**
 * The config file with setup's settings applied, comments and unrelated keys kept: the
 * existing file, else the shipped example, else an empty document.
 */
export function applySettings(existing: string | undefined, s: ConfigSettings): string {
  const doc = YAML.parseDocument(existing ?? templateText());
  if (doc.errors.length > 0 || (doc.contents !== null && !YAML.isMap(doc.contents))) {
    throw new Error(`the existing config is not a YAML mapping: ${doc.errors[0]?.message.split('\n')[0] ?? 'top level is not a mapping'}`);
  }
  reattachSectionComments(doc);
  doc.setIn(['dataDir'], s.dataDir);
  doc.setIn(['engine', 'url'], s.engine.url);
  doc.setIn(['engine', 'user'], s.engine.user);
  doc.setIn(['engine', 'passwordFile'], s.engine.passwordFile);
  if (s.engine.caFile !== undefined) doc.setIn(['engine', 'caFile'], s.engine.caFile);
  else doc.deleteIn(['engine', 'caFile']);
  if (s.repositoryPath !== null) doc.setIn(['repository', 'path'], s.repositoryPath);
  doc.setIn(['catalog', 'path'], s.catalogPath);
  doc.setIn(['scratch', 'path'], s.scratchPath);
  doc.setIn(['listen', 'host'], s.listen.host);
  doc.setIn(['listen', 'port'], s.listen.port);
  doc.setIn(['cors', 'origins'], doc.createNode(s.corsOrigins));
  if ('qmpDir' in s.hosts) {
    doc.deleteIn(['hosts', 'directory']);
    doc.setIn(['hosts', 'qmpDir'], s.hosts.qmpDir);
  } else {
    doc.deleteIn(['hosts', 'qmpDir']);
    doc.setIn(['hosts', 'directory'], s.hosts.directory);
  }
  doc.setIn(['backup', 'method'], s.backupMethod);
  return doc.toString({ lineWidth: 0 });
}

/**
 * The yaml library keeps the comment block that introduces a top-level section as the trailing
 * comment of the section before it, which it prints indented into that section once the
 * document is edited. A block after a blank line belongs to the next key: move it there.
 */
function reattachSectionComments(doc: YAML.Document): void {
  if (!YAML.isMap(doc.contents)) return;
  const items = doc.contents.items;
  for (let i = 0; i + 1 < items.length; i++) {
    const value = items[i]?.value;
    const next = items[i + 1]?.key;
    if (!YAML.isMap(value) || !YAML.isNode(next) || typeof value.comment !== 'string') continue;
    const cut = value.comment.lastIndexOf('\n\n');
    if (cut < 0) continue;
    const moved = value.comment.slice(cut + 2);
    value.comment = value.comment.slice(0, cut) || null;
    next.commentBefore = next.commentBefore ? `${moved}\n${next.commentBefore}` : moved;
    next.spaceBefore = true;
  }
}

/** The engine's origin first, then the other origins already configured (not the example's). */
export function corsOriginsFor(engineUrl: string, existing: unknown, given: string[] | undefined): string[] {
  if (given && given.length > 0) return [...new Set(given.map((o) => new URL(o).origin))];
  const engineOrigin = new URL(engineUrl).origin;
  const kept = Array.isArray(existing) ? existing.filter((o): o is string => typeof o === 'string' && URL.canParse(o)).map((o) => new URL(o).origin) : [];
  return [...new Set([engineOrigin, ...kept.filter((o) => o !== EXAMPLE_ORIGIN)])];
}

function templateText(): string {
  try {
    return readFileSync(TEMPLATE, 'utf8');
  } catch {
    return '';
  }
}
