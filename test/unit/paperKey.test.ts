import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError, type ErrorCode } from '../../backend/src/errors';
import {
  createKeyFile,
  keyCheck,
  newRepoKey,
  paperKey,
  parsePaper,
  parsePaperKey,
  recoverWithPaper,
  repoKeyBytes,
  repoKeyFromBytes,
  unlockRepository,
} from '../../backend/src/repository';
import { base32, unbase32 } from '../../backend/src/repository/paperKey';

// A fixed key and repository, so that the typo below changes line 3's check deterministically.
const REPO_ID = '6f1c2b9e-4a57-4d2e-9b1a-0c3d5e7f9a21';
const KEY = repoKeyFromBytes(Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 255)));
const DATE = new Date('2026-03-01T12:00:00Z');
const FAST = { scrypt: { N: 1024 } };

function parseError(text: string, code: ErrorCode): AppError {
  let err: unknown;
  try {
    parsePaperKey(text);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}

/** The paper's key lines (after "key:") and their indexes in the text's lines. */
function keyLines(text: string): { lines: string[]; first: number } {
  const lines = text.split('\n');
  const first = lines.indexOf('key:') + 1;
  return { lines, first };
}

describe('paper key', () => {
  const paper = paperKey(REPO_ID, KEY, DATE);

  test('layout: title, repository, date, 4 lines of 4-character groups with 2-hex checks, the whole-key check', () => {
    const { lines, first } = keyLines(paper);
    expect(lines[0]).toBe('olvm-backup repository master key');
    expect(paper).toContain(`repository: ${REPO_ID}\ndate: 2026-03-01\n`);
    const rows = lines.slice(first, first + 4);
    for (const row of rows.slice(0, 3)) expect(row).toMatch(/^([A-Z2-7]{4} ){7}[A-Z2-7]{4} {2}[0-9a-f]{2}$/);
    expect(rows[3]).toMatch(/^[A-Z2-7]{4} [A-Z2-7]{3} +[0-9a-f]{2}$/);
    expect(lines[first + 4]).toBe(`check: ${keyCheck(KEY, REPO_ID).slice(0, 8)}`);
    const chars = rows.map((r) => r.replace(/\s+/g, '').slice(0, -2)).join('');
    expect(chars).toBe(base32(repoKeyBytes(KEY)));
  });

  test('base32 is RFC 4648 without padding', () => {
    expect(base32(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
    expect(unbase32('MZXW6YTBOI')?.toString()).toBe('foobar');
    expect(unbase32('MZXW6YTBOJ')).toBeUndefined(); // leftover bits not zero
  });

  test('round trip, also typed back with other spacing and in lower case', () => {
    expect(repoKeyBytes(parsePaperKey(paper)).equals(repoKeyBytes(KEY))).toBe(true);
    const retyped = paper
      .split('\n')
      .map((l) => (/^[A-Z2-7]{4} /.test(l) ? l.replace(/ /g, '').toLowerCase().replace(/(.{6})/g, '$1  ') : l))
      .join('\r\n');
    const back = parsePaper(`  notes before\n${retyped}`);
    expect(back.repositoryId).toBe(REPO_ID);
    expect(repoKeyBytes(back.key).equals(repoKeyBytes(KEY))).toBe(true);
  });

  test('a typing mistake in line 3 is named with its check', () => {
    const { lines, first } = keyLines(paper);
    const row = lines[first + 2] ?? '';
    const check = row.slice(-2);
    // the 6th character replaced by another of the alphabet
    lines[first + 2] = row.slice(0, 5) + (row[5] === 'Q' ? 'R' : 'Q') + row.slice(6);
    const err = parseError(lines.join('\n'), 'INVALID_ARGUMENT');
    expect(err.message).toBe(`line 3 does not match its check '${check}': a typing mistake in that line`);
    lines[first + 2] = row.slice(0, 5) + '1' + row.slice(6);
    expect(parseError(lines.join('\n'), 'INVALID_ARGUMENT').message).toMatch(/^line 3 holds '1'/);
  });

  test('two swapped lines pass their line checks but fail the whole-key check; a missing line is named', () => {
    const { lines, first } = keyLines(paper);
    const swapped = [...lines];
    [swapped[first], swapped[first + 1]] = [lines[first + 1] ?? '', lines[first] ?? ''];
    const err = parseError(swapped.join('\n'), 'REPO_KEY_WRONG');
    expect(err.message).toContain('two lines are swapped');
    const missing = lines.filter((_, i) => i !== first + 1);
    expect(parseError(missing.join('\n'), 'INVALID_ARGUMENT').message).toMatch(/hold 71 characters, a key has 103/);
    expect(parseError(paper.replace(`repository: ${REPO_ID}`, 'repository: another'), 'REPO_KEY_WRONG').message).toContain('repository another');
  });
});

describe('recover with a paper key', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-paper-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('makes a key file the new passphrase opens, for the same master key', async () => {
    await createKeyFile(dir, REPO_ID, KEY, 'forgotten passphrase', FAST);
    const keyId = await recoverWithPaper(dir, REPO_ID, keyCheck(KEY, REPO_ID), paperKey(REPO_ID, KEY), 'fresh passphrase', { ...FAST, label: 'recovered' });
    const unlocked = await unlockRepository(dir, REPO_ID, 'fresh passphrase', { keyCheck: keyCheck(KEY, REPO_ID) });
    expect(unlocked.keyId).toBe(keyId);
    expect(repoKeyBytes(unlocked.key).equals(repoKeyBytes(KEY))).toBe(true);
  });

  test("refuses another repository's paper and a key that does not match the repository's key check", async () => {
    const other = newRepoKey();
    const wrongRepo = recoverWithPaper(dir, REPO_ID, keyCheck(KEY, REPO_ID), paperKey('another-repository', KEY), 'p', FAST);
    await expect(wrongRepo).rejects.toMatchObject({ code: 'REPO_KEY_WRONG', message: expect.stringContaining('is for repository another-repository') as unknown });
    const wrongKey = recoverWithPaper(dir, REPO_ID, keyCheck(KEY, REPO_ID), paperKey(REPO_ID, other), 'p', FAST);
    await expect(wrongKey).rejects.toMatchObject({ code: 'REPO_KEY_WRONG' });
    await expect(fs.readdir(path.join(dir, 'keys'))).rejects.toThrow();
  });
});
