/**
 * The byte-level pieces of file-level restore: path checks (`..`, NUL), the escaped display
 * form of names and its parse back (every byte value), guestfish quoting, globs over bytes,
 * guestfish's stat output, NUL-separated listings. (The service's session registry,
 * jobs/fileSessions.ts, is tested through the API: test/integration/filesApi.test.ts.)
 */
import { randomBytes } from 'crypto';
import { checkedSocketPath, fishQuote } from '../../backend/src/restore/fileBrowseFish';
import { displayName, globMatcher, parseDisplayName, parseStats, pathComponents, plainName, splitNul } from '../../backend/src/restore/fileBrowsePaths';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('paths and names', () => {
  test('components drop empty and . parts; .. and NUL are refused', () => {
    expect(pathComponents(b('/a//b/./c/')).map((x) => x.toString())).toEqual(['a', 'b', 'c']);
    expect(pathComponents(b('/'))).toEqual([]);
    expect(pathComponents(b('a..b/..c')).map((x) => x.toString())).toEqual(['a..b', '..c']);
    expect(() => pathComponents(b('/a/../b'))).toThrow(expect.objectContaining({ code: 'FILE_REFUSED' }) as Error);
    expect(() => pathComponents(b('..'))).toThrow(expect.objectContaining({ code: 'FILE_REFUSED' }) as Error);
    expect(() => pathComponents(Buffer.from([0x61, 0, 0x62]))).toThrow(expect.objectContaining({ code: 'FILE_REFUSED' }) as Error);
  });

  test('display names escape what is not printable UTF-8 and parse back to the same bytes', () => {
    expect(displayName(Buffer.from('new\nline\ttab\\ café'))).toBe('new\\nline\\ttab\\\\ café');
    expect(displayName(Buffer.from([0x62, 0xff, 0xc3]))).toBe('b\\xff\\xc3');
    expect(displayName(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80');
    for (let i = 0; i < 200; i++) {
      const raw = randomBytes(1 + (i % 40));
      expect(parseDisplayName(displayName(raw)).equals(raw)).toBe(true);
    }
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(parseDisplayName(displayName(all)).equals(all)).toBe(true);
    expect(() => parseDisplayName('a\\q')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as Error);
  });

  test('guestfish quoting keeps printable ASCII and writes every other byte as \\xHH', () => {
    expect(fishQuote(Buffer.from('/m0/a b'))).toBe('"/m0/a b"');
    expect(fishQuote(Buffer.from('q"\\\n\xff', 'latin1'))).toBe('"q\\x22\\x5c\\x0a\\xff"');
    expect(() => fishQuote(Buffer.from([0]))).toThrow(expect.objectContaining({ code: 'FILE_REFUSED' }) as Error);
  });

  test('globs match names anywhere, paths from the root, bytes as bytes', () => {
    const m = globMatcher('*.txt', false);
    expect(m(b('docs/readme.txt'))).toBe(true);
    expect(m(b('docs/readme.TXT'))).toBe(false);
    expect(globMatcher('*.txt', true)(b('docs/readme.TXT'))).toBe(true);
    expect(m(b('txt.d/file'))).toBe(false);
    expect(globMatcher('docs/*.md', false)(b('docs/deeper/note.md'))).toBe(false);
    expect(globMatcher('docs/**/*.md', false)(b('docs/deeper/note.md'))).toBe(true);
    expect(globMatcher('bad\\xff*', false)(Buffer.from([0x62, 0x61, 0x64, 0xff, 0x41]))).toBe(true);
    expect(globMatcher('new\\n*', false)(b('new\nline.txt'))).toBe(true);
    expect(globMatcher('[ab]?.c', false)(b('x/bz.c'))).toBe(true);
    expect(globMatcher('[!ab]?.c', false)(b('bz.c'))).toBe(false);
    expect(globMatcher('a+b(c).txt', false)(b('a+b(c).txt'))).toBe(true);
  });

  test('stat output: one struct, a list with a missing name, types and modes', () => {
    const one = b('st_dev: 2049\nst_ino: 13\nst_mode: 33188\nst_nlink: 1\nst_uid: 5\nst_gid: 6\nst_rdev: 0\nst_size: 22\nst_mtime_sec: 100\nst_mtime_nsec: 250000000\n');
    expect(parseStats(one)).toEqual([{ type: 'file', mode: 0o644, size: 22, mtimeMs: 100_250, uid: 5, gid: 6 }]);
    const list = b('[0] = {\n  st_dev: 1\n  st_ino: 2\n  st_mode: 16877\n  st_size: 4096\n}\n[1] = {\n  st_dev: 0\n  st_ino: -1\n  st_mode: 0\n}\n[2] = {\n  st_dev: 1\n  st_ino: 3\n  st_mode: 8630\n}\n');
    expect(parseStats(list).map((s) => s && [s.type, s.mode])).toEqual([['directory', 0o755], null, ['char-device', 0o666]]);
  });

  test('NUL-separated listings and the names a guestfish list can carry unquoted', () => {
    expect(splitNul(Buffer.from('a\0b c\0\0d\0')).map((x) => x.toString())).toEqual(['a', 'b c', 'd']);
    expect(plainName(b('lost+found'))).toBe(true);
    expect(plainName(b('a b'))).toBe(false);
    expect(plainName(b('a"b'))).toBe(false);
    expect(plainName(Buffer.from([0x61, 0xff]))).toBe(false);
  });
});

describe('the NBD socket path of an appliance or a mount', () => {
  test('a path guestfish and an nbd:// URI read as it is passes; ?, #, &, %, blanks and quotes are refused naming the directory', () => {
    expect(checkedSocketPath('/var/tmp/w-1', '/var/tmp/w-1/olvm-browse-aB3.x+y/nbd.sock')).toBe('/var/tmp/w-1/olvm-browse-aB3.x+y/nbd.sock');
    for (const bad of ['/tmp/a?b', '/tmp/a#b', '/tmp/a&b', '/tmp/a%20b', '/tmp/a b', '/tmp/a"b', "/tmp/a'b", '/tmp/a=b']) {
      expect(() => checkedSocketPath(bad, `${bad}/olvm-mount-x/nbd.sock`)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`the work directory ${bad} must be`) }) as Error);
    }
  });
});
