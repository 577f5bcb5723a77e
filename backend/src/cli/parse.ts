import { AppError } from '../errors';

/** "1M", "256K", "1048576" → bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)([KMG]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new AppError('INVALID_ARGUMENT', `${what}: '${text}' is not a size (e.g. 1M, 256K)`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mult;
}
