/**
 * Paths and names of Browse files…, pure: a guest's names are bytes (newlines, bytes that are
 * not UTF-8), carried as base64 by the service beside an escaped display form. Paths are built
 * from the bytes (never from the display text), breadcrumbs split them back, names are shown
 * escaped the way the service escapes them (`\\`, `\n`, `\t`, `\xHH`), modes as `drwxr-xr-x`,
 * and a selection becomes the downloads the service offers (a file as is, a folder as .tar.gz).
 */
import type { FileEntryType } from '../../../backend/src/api/contract';

const SLASH = 0x2f;

export function b64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToB64(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** A folder's path + one of its names (both base64 bytes): `/a` + `b` → `/a/b`; the root is `` or `/`. */
export function childPathB64(parentB64: string, nameB64: string): string {
  const parent = b64ToBytes(parentB64);
  const name = b64ToBytes(nameB64);
  const trimmed = parent.length && parent[parent.length - 1] === SLASH ? parent.subarray(0, parent.length - 1) : parent;
  const out = new Uint8Array(trimmed.length + 1 + name.length);
  out.set(trimmed, 0);
  out[trimmed.length] = SLASH;
  out.set(name, trimmed.length + 1);
  return bytesToB64(out);
}

/** The components of a path (bytes), empty ones and `.` dropped. */
function components(path: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== SLASH) continue;
    const part = path.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
    out.push(part);
  }
  return out;
}

export interface Crumb {
  /** What the breadcrumb shows (escaped); the root shows the filesystem's name. */
  label: string;
  pathB64: string;
}

/** Root first, then each folder down to `pathB64`. */
export function breadcrumbs(filesystem: string, pathB64: string): Crumb[] {
  const parts = components(b64ToBytes(pathB64));
  const crumbs: Crumb[] = [{ label: filesystem, pathB64: bytesToB64(new Uint8Array([SLASH])) }];
  let at = crumbs[0]!.pathB64;
  for (const p of parts) {
    at = childPathB64(at, bytesToB64(p));
    crumbs.push({ label: displayBytes(p), pathB64: at });
  }
  return crumbs;
}

/** The parent folder of a path (the root's parent is the root). */
export function parentPathB64(pathB64: string): string {
  const parts = components(b64ToBytes(pathB64));
  let at = bytesToB64(new Uint8Array([SLASH]));
  for (const p of parts.slice(0, -1)) at = childPathB64(at, bytesToB64(p));
  return at;
}

/**
 * Bytes as the service shows names: valid UTF-8 printable text as is, `\\` for a backslash,
 * `\n`, `\t`, and `\xHH` for control bytes and bytes that are not UTF-8 — so two names that
 * differ in bytes never look alike, and a newline never breaks a row.
 */
export function displayBytes(b: Uint8Array): string {
  let out = '';
  let i = 0;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  while (i < b.length) {
    const c = b[i]!;
    const len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len > 1 && i + len <= b.length) {
      try {
        out += decoder.decode(b.subarray(i, i + len));
        i += len;
        continue;
      } catch {
        // not a valid sequence: escaped byte by byte below
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

const TYPE_CHAR: Record<FileEntryType, string> = { file: '-', directory: 'd', symlink: 'l', 'char-device': 'c', 'block-device': 'b', fifo: 'p', socket: 's', unknown: '?' };

/** `drwxr-xr-x`, with setuid/setgid/sticky as `s`/`S`, `t`/`T`. */
export function modeText(type: FileEntryType, mode: number): string {
  const bit = (m: number, ch: string): string => (mode & m ? ch : '-');
  const special = (x: number, s: number, on: string, off: string, exec: string): string => (mode & s ? (mode & x ? on : off) : exec);
  return (
    TYPE_CHAR[type] +
    bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's', 'S', bit(0o100, 'x')) +
    bit(0o040, 'r') + bit(0o020, 'w') + special(0o010, 0o2000, 's', 'S', bit(0o010, 'x')) +
    bit(0o004, 'r') + bit(0o002, 'w') + special(0o001, 0o1000, 't', 'T', bit(0o001, 'x'))
  );
}

/** What can be downloaded: files (as is), folders (.tar.gz), symlinks (the service follows
 *  those that stay in their filesystem); devices, fifos and sockets never. */
export function downloadable(type: FileEntryType): boolean {
  return type === 'file' || type === 'directory' || type === 'symlink';
}

export interface SelectedItem {
  filesystem: string;
  pathB64: string;
  /** The escaped name, for the file name the browser saves. */
  name: string;
  type: FileEntryType;
}

/** The downloads a selection makes: one per item (the service streams each), in the order shown. */
export function downloadsOf(selected: readonly SelectedItem[]): Array<SelectedItem & { fileName: string }> {
  return selected.filter((s) => downloadable(s.type)).map((s) => ({ ...s, fileName: saveName(s.name, s.type === 'directory') }));
}

/** A file name a browser can save: the escaped name with `/` and escapes made safe, `.tar.gz` for a folder. */
export function saveName(name: string, folder: boolean): string {
  const safe = name.replace(/[/\\]/g, '_').replace(/^\.+/, '_') || 'download';
  return folder ? `${safe}.tar.gz` : safe;
}

/** The file name in a Content-Disposition (RFC 6266 `filename*` first), else null. */
export function dispositionName(header: string | null): string | null {
  if (!header) return null;
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1]);
    } catch {
      // bytes that are not UTF-8: fall back to the plain name
    }
  }
  const plain = /filename="([^"]*)"/i.exec(header);
  return plain?.[1] ?? null;
}
