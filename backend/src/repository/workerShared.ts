/**
 * What both kinds of chunk worker (chunkWorker.ts, format 1; packWorker.ts, format 2) and their
 * pools share: handing buffers across threads without cloning, and turning a failure into the
 * reply the pool turns back into an AppError (chunkWorkers.ts).
 */
import { isAppError, type ErrorCode } from '../errors';

/** Whether the Buffer owns its whole ArrayBuffer (then it can be transferred as it is). */
export function ownsBuffer(b: Buffer): boolean {
  return b.byteOffset === 0 && b.buffer instanceof ArrayBuffer && b.buffer.byteLength === b.byteLength;
}

/** A copy in an ArrayBuffer of its own (never a slice of Node's pool, which must not move). */
export function copyToOwn(b: Uint8Array): Buffer {
  const copy = Buffer.from(new ArrayBuffer(b.byteLength));
  copy.set(b);
  return copy;
}

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
}

/** A failed job's reply: the message, the errno, and the code and details of a coded failure. */
export function failureReply(id: number, err: unknown): { id: number; ok: false; error: { message: string; errno?: string; code?: ErrorCode; details?: Record<string, unknown> } } {
  const coded = isAppError(err) ? { code: err.code, ...(err.details ? { details: err.details } : {}) } : {};
  const errno = errnoOf(err);
  return { id, ok: false, error: { message: (err as Error).message ?? String(err), ...(errno ? { errno } : {}), ...coded } };
}
