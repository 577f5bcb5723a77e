/**
 * The byte-level pieces of file-level restore: path checks (`..`, NUL), the escaped display
 * form of names and its parse back (every byte value), guestfish quoting, globs over bytes,
 * guestfish's stat output, NUL-separated listings; and the session registry's rules (one per
 * user per point, a maximum, idle closing, audit of every request) with stand-in sessions.
 */
import { randomBytes } from 'crypto';
import { PassThrough } from 'stream';
import { BrowseSessions, type BrowseAuditEntry, type BrowseSessionLike } from '../../backend/src/restore';
import { fishQuote } from '../../backend/src/restore/fileBrowseFish';
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

/** A stand-in session: answers from memory, counts closes. */
function standIn(log: string[]): BrowseSessionLike & { closed: number; alive: boolean } {
  const s = {
    closed: 0,
    alive: true,
    layout: { disks: [], partitions: [], logicalVolumes: [], filesystems: [], systems: [], timings: { launchMs: 0, mountMs: 0 } },
    get usable() {
      return s.alive && s.closed === 0;
    },
    list: () => Promise.resolve({ entries: [], truncated: false }),
    stat: () => Promise.reject(new Error('unused')),
    find: () => Promise.resolve({ results: [], truncated: false }),
    read: () => Promise.resolve({ stat: { type: 'file' as const, mode: 0o644, size: 1, mtimeMs: 0, uid: 0, gid: 0 }, stream: new PassThrough() }),
    archive: () => Promise.resolve(new PassThrough()),
    close: () => {
      s.closed++;
      log.push('close');
      return Promise.resolve();
    },
  };
  return s;
}

describe('the session registry', () => {
  const at = { filesystem: '/dev/sda1', path: Buffer.from('/a\nb') };

  test('one session per user per point, a maximum, audit of every request, idle closing after the last transfer', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] });
    const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
    try {
      const log: string[] = [];
      const audit: BrowseAuditEntry[] = [];
      const made: Array<ReturnType<typeof standIn>> = [];
      const reg = new BrowseSessions({
        open: (pointId, actor) => {
          log.push(`open ${actor} ${pointId}`);
          const s = standIn(log);
          made.push(s);
          return Promise.resolve(s);
        },
        idleSeconds: 60,
        maxSessions: 2,
        audit: (e) => audit.push(e),
      });
      await reg.list('alice', 'p1', at);
      await reg.find('alice', 'p1', '*.txt');
      await reg.list('bob', 'p1', at);
      expect(log).toEqual(['open alice p1', 'open bob p1']);
      await expect(reg.list('carol', 'p1', at)).rejects.toMatchObject({ code: 'TOO_MANY_REQUESTS', message: expect.stringMatching(/at most 2 file-browsing sessions/) });
      expect(audit.map((e) => `${e.actor} ${e.action} ${e.detail}`)).toEqual([
        'alice browse-list /dev/sda1:/a\\nb',
        'alice browse-find *:*.txt',
        'bob browse-list /dev/sda1:/a\\nb',
        'carol browse-list /dev/sda1:/a\\nb',
      ]);
      // a transfer in progress keeps alice's session past the idle time
      const stream = await reg.archive('alice', 'p1', at);
      jest.advanceTimersByTime(120_000);
      await settle();
      expect(made[0]?.closed).toBe(0);
      expect(made[1]?.closed).toBe(1);
      stream.destroy();
      await settle();
      jest.advanceTimersByTime(60_000);
      await settle();
      expect(made[0]?.closed).toBe(1);
      expect(reg.size).toBe(0);
      expect(audit.filter((e) => e.action === 'browse-close').map((e) => `${e.actor} ${e.detail}`)).toEqual(['bob idle for 60 s', 'alice idle for 60 s']);
    } finally {
      jest.useRealTimers();
    }
  });

  test('a session whose appliance died is replaced on the next request', async () => {
    const made: Array<ReturnType<typeof standIn>> = [];
    const reg = new BrowseSessions({
      open: () => {
        const s = standIn([]);
        made.push(s);
        return Promise.resolve(s);
      },
    });
    await reg.list('alice', 'p1', at);
    (made[0] as { alive: boolean }).alive = false;
    await reg.list('alice', 'p1', at);
    expect(made).toHaveLength(2);
    expect(made[0]?.closed).toBe(1);
    await reg.closeAll();
    expect(made[1]?.closed).toBe(1);
  });
});
