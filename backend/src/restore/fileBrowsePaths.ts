/**
 * Names and paths of a browsed filesystem as bytes: a guest's names may hold newlines or bytes
 * that are not UTF-8, so they travel as base64 (`nameB64`) beside an escaped display form
 * (`\\`, `\n`, `\xHH`) that parses back to the same bytes; a path is checked for `..` and NUL
 * before anything runs; globs match bytes; guestfish's stat output becomes an entry's type,
 * mode, size and time.
 */
import { AppError } from '../errors';

export type FileType = 'file' | 'directory' | 'symlink' | 'char-device' | 'block-device' | 'fifo' | 'socket' | 'unknown';

export interface FileStat {
  type: FileType;
  /** Permission bits (st_mode & 07777). */
  mode: number;
  size: number;
  /** Modification time, ms since the epoch. */
  mtimeMs: number;
  uid: number;
  gid: number;
}

/** Path components (raw bytes) of a path inside one filesystem; `/` is the empty list. */
export function pathComponents(p: Buffer): Buffer[] {
  if (p.includes(0)) throw new AppError('FILE_REFUSED', 'the path holds a NUL byte');
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p[i] !== 0x2f) continue;
    const part = p.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
      throw new AppError('FILE_REFUSED', `the path ${displayName(p)} holds '..': paths are taken inside the filesystem as they are, without going up`);
    }
    out.push(part);
  }
  return out;
}

/** `root` + components joined with `/`. */
export function joinPath(root: string, parts: readonly Buffer[]): Buffer {
  return Buffer.concat([Buffer.from(root), ...parts.flatMap((p) => [Buffer.from('/'), p])]);
}

/** Escaped display: valid UTF-8 printable text as is, `\\` for a backslash, `\n`, `\t`, and
 *  `\xHH` for control bytes and bytes that are not UTF-8. parseDisplayName() reverses it. */
export function displayName(b: Buffer): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    const len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len > 1 && i + len <= b.length) {
      const s = b.subarray(i, i + len).toString('utf8');
      // a valid sequence decodes to one character (no U+FFFD) and encodes back to the same bytes
      if (!s.includes('\ufffd') && Buffer.from(s, 'utf8').equals(b.subarray(i, i + len))) {
        out += s;
        i += len;
        continue;
      }
    }
    if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
    else out += `\\x${c.toString(16).padStart(2, '0')}`;
    i += 1;
  }
  return out;
}

/** The bytes of a name written as displayName() writes it (`\xHH`, `\n`, `\t`, `\\`). */
export function parseDisplayName(s: string): Buffer {
  const parts: Buffer[] = [];
  let text = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch !== '\\') {
      text += ch;
      continue;
    }
    const next = s[i + 1];
    const flush = (): void => {
      if (text) parts.push(Buffer.from(text, 'utf8'));
      text = '';
    };
    if (next === '\\') text += '\\';
    else if (next === 'n') text += '\n';
    else if (next === 't') text += '\t';
    else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      flush();
      parts.push(Buffer.from([parseInt(s.slice(i + 2, i + 4), 16)]));
      i += 2;
    } else throw new AppError('INVALID_ARGUMENT', `'${s}': a backslash must start \\\\, \\n, \\t or \\xHH`);
    i += 1;
  }
  if (text) parts.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(parts);
}

/**
 * A glob over names as bytes (latin1, one character per byte): `*` any run within a name,
 * `?` one byte, `[…]` a set, `**` any run across `/`. Without a `/` it matches a name
 * anywhere in the tree, with one the whole path under the filesystem's root.
 */
export function globMatcher(glob: string, caseInsensitive: boolean): (relPath: Buffer) => boolean {
  const g = parseDisplayName(glob).toString('latin1');
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i] as string;
    if (c === '*' && g[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = g.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = g.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/\]]/g, (m) => `\\${m}`);
  }
  const whole = g.includes('/');
  const rx = new RegExp(`^${re}$`, `s${caseInsensitive ? 'i' : ''}`);
  return (relPath) => {
    const s = relPath.toString('latin1');
    return rx.test(whole ? s.replace(/^\/+/, '') : s.slice(s.lastIndexOf('/') + 1));
  };
}

const TYPES: Record<number, FileType> = {
  0o140000: 'socket',
  0o120000: 'symlink',
  0o100000: 'file',
  0o060000: 'block-device',
  0o040000: 'directory',
  0o020000: 'char-device',
  0o010000: 'fifo',
};

/** guestfish's print of one `statns` struct (or of each in a list), in order. */
export function parseStats(output: Buffer): Array<FileStat | null> {
  const out: Array<FileStat | null> = [];
  let cur: Record<string, number> = {};
  const flush = (): void => {
    if (cur.st_mode === undefined) return;
    // lstatnslist reports a name it could not stat with st_ino -1
    out.push(cur.st_ino === -1 ? null : statOf(cur));
    cur = {};
  };
  for (const line of output.toString('utf8').split('\n')) {
    const m = /^\s*(st_\w+): (-?\d+)$/.exec(line);
    if (m) {
      if (m[1] === 'st_dev' && cur.st_mode !== undefined) flush();
      cur[m[1] as string] = Number(m[2]);
    }
  }
  flush();
  return out;
}

function statOf(s: Record<string, number>): FileStat {
  const mode = s.st_mode ?? 0;
  return {
    type: TYPES[mode & 0o170000] ?? 'unknown',
    mode: mode & 0o7777,
    size: s.st_size ?? 0,
    mtimeMs: (s.st_mtime_sec ?? 0) * 1000 + Math.floor((s.st_mtime_nsec ?? 0) / 1e6),
    uid: s.st_uid ?? 0,
    gid: s.st_gid ?? 0,
  };
}

/** A name guestfish's list syntax carries unquoted (lstatnslist, readlinklist take lists). */
export function plainName(b: Buffer): boolean {
  for (const c of b) if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x27 || c === 0x5c) return false;
  return b.length > 0;
}

/** NUL-separated names (ls0, find0 output). */
export function splitNul(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = b.indexOf(0); i >= 0; i = b.indexOf(0, start)) {
    if (i > start) out.push(b.subarray(start, i));
    start = i + 1;
  }
  if (start < b.length) out.push(b.subarray(start));
  return out;
}
