import { randomBytes } from 'crypto';

const POINT_ID = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6,32}$/;

/** `20261126T081502Z-3f9a1c07d2e4`: UTC second + 48 random bits. Sorts by time as a string and
 *  is safe as a directory name. Points of every VM share one directory, so ids taken in the
 *  same second must not collide: 48 bits make that negligible (24 bits collided in tests). */
export function newPointId(at: Date = new Date()): string {
  if (Number.isNaN(at.getTime())) throw new RangeError('newPointId: invalid date');
  const iso = at.toISOString(); // 2026-11-26T08:15:02.123Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return `${stamp}-${randomBytes(6).toString('hex')}`;
}

export function isPointId(s: unknown): s is string {
  return typeof s === 'string' && POINT_ID.test(s);
}
