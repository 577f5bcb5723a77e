/**
 * The paper form of a repository's master key: what an operator prints and locks away, and
 * types back in when every passphrase is lost. Pure text in, text out (keyFiles.ts turns a
 * parsed paper into a key file).
 *
 * Layout: a title, the repository id, the date, then the 64 key bytes in base32 (RFC 4648
 * alphabet, no padding) as lines of 8 groups of 4 characters, each line followed by a 2-hex
 * check (the first byte of SHA-256 of the line's characters, upper case, without spaces), then
 * the whole-key check: the first 8 characters of the repository's key check (repoKey.keyCheck).
 * A line check catches a typing mistake and names its line; the whole-key check catches what a
 * line check cannot (two lines swapped, a wrong repository id).
 */
import { createHash } from 'crypto';
import { AppError } from '../errors';
import { keyCheck, MASTER_KEY_BYTES, repoKeyBytes, repoKeyFromBytes, type RepoKey } from './repoKey';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const GROUP = 4;
const GROUPS_PER_LINE = 8;
const LINE_CHARS = GROUP * GROUPS_PER_LINE;
/** 512 bits in 5-bit characters, the last one carrying 2 bits and 3 zero bits */
const KEY_CHARS = Math.ceil((MASTER_KEY_BYTES * 8) / 5);
const WHOLE_CHECK_CHARS = 8;
const TITLE = 'olvm-backup repository master key';

export interface PaperKey {
  repositoryId: string;
  key: RepoKey;
}

/** The printable recovery form of `key` (see the module comment). Whoever holds it can read
 *  every backup of the repository: the text says so. */
export function paperKey(repositoryId: string, key: RepoKey, date: Date = new Date()): string {
  const text = base32(repoKeyBytes(key));
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += LINE_CHARS) {
    const line = text.slice(i, i + LINE_CHARS);
    const groups = line.match(new RegExp(`.{1,${GROUP}}`, 'g')) ?? [];
    lines.push(`${groups.join(' ').padEnd(LINE_CHARS + GROUPS_PER_LINE - 1)}  ${lineCheck(line)}`);
  }
  return [
    TITLE,
    '',
    `repository: ${repositoryId}`,
    `date: ${date.toISOString().slice(0, 10)}`,
    '',
    'key:',
    ...lines,
    `check: ${keyCheck(key, repositoryId).slice(0, WHOLE_CHECK_CHARS)}`,
    '',
    'Whoever has this paper can read every backup in this repository: keep it locked away.',
    'Each key line ends with its 2-character check. To make a new passphrase from it:',
    '  olvm-backup key recover --repo DIR --paper FILE --new-passphrase-file FILE',
    '',
  ].join('\n');
}

/** The key a paper holds; see parsePaper. */
export function parsePaperKey(text: string): RepoKey {
  return parsePaper(text).key;
}

/**
 * The repository id and key of a paper key as typed back in: spacing and case are ignored.
 * INVALID_ARGUMENT naming the first line whose check fails or that holds a character base32
 * has not; REPO_KEY_WRONG when every line matches its check but the whole key does not.
 */
export function parsePaper(text: string): PaperKey {
  const rows = text.split(/\r?\n/).map((l) => l.trim());
  const field = (name: string): string | undefined => {
    const row = rows.find((l) => l.toLowerCase().startsWith(`${name}:`));
    return row?.slice(name.length + 1).trim();
  };
  const repositoryId = field('repository');
  if (!repositoryId) throw bad("the paper key has no 'repository:' line");
  const start = rows.findIndex((l) => l.toLowerCase() === 'key:');
  const end = rows.findIndex((l) => l.toLowerCase().startsWith('check:'));
  if (start < 0) throw bad("the paper key has no 'key:' line before its key lines");
  if (end < start) throw bad("the paper key has no 'check:' line after its key lines");
  const keyRows = rows.slice(start + 1, end).filter((l) => l !== '');
  let chars = '';
  keyRows.forEach((row, i) => {
    chars += checkedLine(row, i + 1);
  });
  if (chars.length !== KEY_CHARS) {
    throw bad(`the key lines hold ${chars.length} characters, a key has ${KEY_CHARS} (${Math.ceil(KEY_CHARS / LINE_CHARS)} lines): a line or part of one is missing or extra`);
  }
  const bytes = unbase32(chars);
  if (bytes === undefined) throw bad(`the last key line ends in a character no key ends in: a typing mistake in line ${keyRows.length}`);
  const key = repoKeyFromBytes(bytes);
  bytes.fill(0);
  const want = (field('check') ?? '').replace(/\s+/g, '');
  const got = keyCheck(key, repositoryId).slice(0, WHOLE_CHECK_CHARS);
  // compared without case, like the lines (8 base64 characters keep ~40 bits without it)
  if (want.toLowerCase() !== got.toLowerCase()) {
    throw new AppError(
      'REPO_KEY_WRONG',
      `every key line matches its check, but the whole key does not match the check '${want}' for repository ${repositoryId}: ` +
        'two lines are swapped or in the wrong order, or the repository id or the check was mistyped',
      { details: { repositoryId } },
    );
  }
  return { repositoryId, key };
}

/** One key line's base32 characters after its check was verified. */
function checkedLine(row: string, n: number): string {
  const compact = row.replace(/\s+/g, '').toUpperCase();
  if (compact.length < 3) throw bad(`key line ${n} is too short to hold characters and a check`);
  const line = compact.slice(0, -2);
  const check = compact.slice(-2).toLowerCase();
  const stray = [...line].find((c) => !ALPHABET.includes(c));
  if (stray !== undefined) {
    throw bad(`line ${n} holds '${stray}', which no key line has (only A-Z and 2-7): a typing mistake in that line`);
  }
  if (lineCheck(line) !== check) throw bad(`line ${n} does not match its check '${check}': a typing mistake in that line`);
  return line;
}

function lineCheck(line: string): string {
  return createHash('sha256').update(line, 'ascii').digest().subarray(0, 1).toString('hex');
}

function bad(message: string): AppError {
  return new AppError('INVALID_ARGUMENT', message);
}

/** RFC 4648 base32 without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/** The bytes of unpadded base32 (upper case), or undefined when the leftover bits of the last
 *  character are not zero (no encoder writes that: a mistyped last character). */
export function unbase32(text: string): Buffer | undefined {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of text) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) return undefined;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((acc >>> (bits - 8)) & 255);
      bits -= 8;
    }
    acc &= (1 << bits) - 1;
  }
  return acc === 0 ? Buffer.from(out) : undefined;
}
