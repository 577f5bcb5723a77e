import type { ErrorRequestHandler, Request, Response } from 'express';
import { AppError, describeError, type ErrorCode } from '../errors';
import type { ApiErrorBody } from './contract';

/** The one place where error codes become HTTP statuses (DESIGN.md §7). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  FORBIDDEN: 403,
  BAD_REQUEST: 400,
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  REPO_POINT_NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
  TOO_MANY_REQUESTS: 429,
  JOB_CONFLICT: 409,
  RESTORE_REFUSED: 409,
  REPO_DISK_NOT_FOUND: 404,
  FILE_NOT_FOUND: 404,
  FILE_REFUSED: 400,
  FILE_UNREADABLE: 422,
  JOB_NOT_CANCELLABLE: 409,
  REPO_LOCKED: 409,
  REPO_POINT_LOCKED: 409,
  REPO_POINT_LEASED: 409,
  SERVICE_STOPPING: 503,
  ENGINE_UNREACHABLE: 502,
  ENGINE_TLS_ERROR: 502,
  ENGINE_HTTP_ERROR: 502,
  ENGINE_PROTOCOL_ERROR: 502,
  ENGINE_TIMEOUT: 504,
};

export function statusOf(err: unknown): number {
  return err instanceof AppError ? (STATUS[err.code] ?? 500) : 500;
}

export function sendError(res: Response, status: number, code: string, message: string, details?: Record<string, unknown>): void {
  const body: ApiErrorBody = { error: { code, message, ...(details ? { details } : {}) } };
  res.status(status).json(body);
}

/**
 * Last handler: coded errors with their status; body-parser's own failures (bad JSON, too
 * large) as the client's fault; anything else a 500 that says only that, the cause logged.
 */
export function errorHandler(log: (err: unknown, status: number, req: Request, res: Response) => void): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const parser = bodyParserError(err);
    if (parser) {
      sendError(res, parser.status, parser.code, parser.message);
      return;
    }
    const status = statusOf(err);
    log(err, status, req, res);
    if (status === 500 || !(err instanceof AppError)) {
      sendError(res, 500, 'INTERNAL', 'the backup service failed to answer this request; its log has the cause');
      return;
    }
    const details = err.details && status !== 500 ? err.details : undefined;
    sendError(res, status, err.code, status >= 500 ? describeError(err) : err.message, details);
  };
}

function bodyParserError(err: unknown): { status: number; code: string; message: string } | undefined {
  if (typeof err !== 'object' || err === null || !('type' in err)) return undefined;
  const type = (err).type;
  if (type === 'entity.parse.failed') return { status: 400, code: 'BAD_REQUEST', message: 'the request body is not valid JSON' };
  if (type === 'entity.too.large') return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'the request body is larger than this service accepts (16 KiB)' };
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return { status: 415, code: 'BAD_REQUEST', message: 'the request body must be UTF-8 JSON' };
  if (type === 'request.aborted') return { status: 400, code: 'BAD_REQUEST', message: 'the request body was not sent completely' };
  return undefined;
}
