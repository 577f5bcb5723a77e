import { AppError, type ErrorCode } from '../../backend/src/errors';

/** Awaits `p`, which must fail with an AppError of `code`; returns that error. */
export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe(code);
    return err as AppError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}
