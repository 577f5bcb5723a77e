// Browse files… logic: escaped names, byte-exact paths and breadcrumbs, modes, downloads.
import { breadcrumbs, b64ToBytes, bytesToB64, childPathB64, dispositionName, displayBytes, downloadsOf, modeText, parentPathB64, saveName } from './fileBrowse';

const b64 = (s: string | number[]): string => bytesToB64(typeof s === 'string' ? new TextEncoder().encode(s) : new Uint8Array(s));
const text = (x: string): string => new TextDecoder().decode(b64ToBytes(x));

describe('Browse files logic', () => {
  it('shows names escaped as the service does: newline, tab, backslash, invalid UTF-8, control bytes; valid UTF-8 as is', () => {
    expect(displayBytes(new TextEncoder().encode('new\nline\tx\\y.txt'))).toBe('new\\nline\\tx\\\\y.txt');
    expect(displayBytes(new Uint8Array([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e]))).toBe('bad\\xff\\xfe.');
    expect(displayBytes(new TextEncoder().encode('café 東京 🎉'))).toBe('café 東京 🎉');
    expect(displayBytes(new Uint8Array([0x01, 0x7f, 0x1b]))).toBe('\\x01\\x7f\\x1b');
    // a truncated UTF-8 sequence and an overlong encoding are bytes, not text
    expect(displayBytes(new Uint8Array([0xc3]))).toBe('\\xc3');
    expect(displayBytes(new Uint8Array([0xe2, 0x82]))).toBe('\\xe2\\x82');
    expect(displayBytes(new Uint8Array([0xc0, 0xaf]))).toBe('\\xc0\\xaf');
    // HTML is shown as text by React; the escaping leaves it alone
    expect(displayBytes(new TextEncoder().encode('<b>&'))).toBe('<b>&');
  });

  it('builds paths from the bytes, never from the display text', () => {
    const root = b64('/');
    const docs = childPathB64(root, b64('docs'));
    expect(text(docs)).toBe('/docs');
    const odd = childPathB64(docs, b64([0x6e, 0x0a, 0xff]));
    expect([...b64ToBytes(odd)]).toEqual([...new TextEncoder().encode('/docs/'), 0x6e, 0x0a, 0xff]);
    expect(text(childPathB64(b64(''), b64('a')))).toBe('/a');
    expect(text(childPathB64(b64('/a/'), b64('b')))).toBe('/a/b');
    expect(text(parentPathB64(docs))).toBe('/');
    expect(text(parentPathB64(b64('/a/b/c')))).toBe('/a/b');
    expect(text(parentPathB64(root))).toBe('/');
  });

  it('splits a path into breadcrumbs, root first, labels escaped', () => {
    const p = bytesToB64(new Uint8Array([...new TextEncoder().encode('/docs/'), 0x6e, 0x0a, 0xff, ...new TextEncoder().encode('/x')]));
    const crumbs = breadcrumbs('/dev/sda1', p);
    expect(crumbs.map((c) => c.label)).toEqual(['/dev/sda1', 'docs', 'n\\n\\xff', 'x']);
    expect(crumbs[crumbs.length - 1]!.pathB64).toBe(p);
    expect(text(crumbs[1]!.pathB64)).toBe('/docs');
    expect(breadcrumbs('/dev/sda2', b64('/')).map((c) => c.label)).toEqual(['/dev/sda2']);
  });

  it('writes modes like ls', () => {
    expect(modeText('directory', 0o755)).toBe('drwxr-xr-x');
    expect(modeText('file', 0o644)).toBe('-rw-r--r--');
    expect(modeText('symlink', 0o777)).toBe('lrwxrwxrwx');
    expect(modeText('file', 0o4755)).toBe('-rwsr-xr-x');
    expect(modeText('directory', 0o1777)).toBe('drwxrwxrwt');
    expect(modeText('file', 0o2640)).toBe('-rw-r-S---');
    expect(modeText('char-device', 0o666)).toBe('crw-rw-rw-');
  });

  it('turns a selection into downloads: files as is, folders as .tar.gz, never devices or fifos', () => {
    const got = downloadsOf([
      { filesystem: '/dev/sda1', pathB64: b64('/docs'), name: 'docs', type: 'directory' },
      { filesystem: '/dev/sda1', pathB64: b64('/a.txt'), name: 'a.txt', type: 'file' },
      { filesystem: '/dev/sda1', pathB64: b64('/fifo'), name: 'fifo', type: 'fifo' },
      { filesystem: '/dev/sda3', pathB64: b64('/null'), name: 'null', type: 'char-device' },
    ]);
    expect(got.map((d) => d.fileName)).toEqual(['docs.tar.gz', 'a.txt']);
    expect(saveName('new\\nline.txt', false)).toBe('new_nline.txt');
    expect(saveName('..', false)).toBe('_');
    expect(saveName('', true)).toBe('download.tar.gz');
  });

  it('reads the file name of a download', () => {
    expect(dispositionName(`attachment; filename="new_line.txt"; filename*=UTF-8''new%0Aline.txt`)).toBe('new\nline.txt');
    expect(dispositionName(`attachment; filename="bad__.txt"; filename*=UTF-8''bad%FF%FE.txt`)).toBe('bad__.txt');
    expect(dispositionName('attachment; filename="docs.tar.gz"')).toBe('docs.tar.gz');
    expect(dispositionName(null)).toBeNull();
  });
});
