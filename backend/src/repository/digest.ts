import { createHash } from 'crypto';
import { AppError } from '../errors';
import { isHexDigest } from './layout';

export const DIGEST_LENGTH = 32;

/** The index entry of a chunk that reads as zeros: such chunks are never stored. */
export const ZERO_DIGEST: Buffer = Buffer.alloc(DIGEST_LENGTH);
export const ZERO_DIGEST_HEX = ZERO_DIGEST.toString('hex');

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Accepts a 32-byte Buffer or 64 lower/upper-case hex characters; returns lower-case hex. */
export function digestToHex(digest: Buffer | string): string {
  if (typeof digest === 'string') {
    const hex = digest.toLowerCase();
    if (!isHexDigest(hex)) throw new AppError('INVALID_ARGUMENT', `chunk digest "${digest}" is not 64 hex characters`);
    return hex;
  }
  if (!Buffer.isBuffer(digest) || digest.length !== DIGEST_LENGTH) {
    throw new AppError('INVALID_ARGUMENT', `chunk digest must be ${DIGEST_LENGTH} bytes`);
  }
  return digest.toString('hex');
}
