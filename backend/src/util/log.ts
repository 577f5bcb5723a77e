import pino from 'pino';

export type Logger = pino.Logger;

/** Tokens and passwords are censored wherever these paths occur, so a mistake cannot log one. */
const REDACT = ['req.headers.authorization', 'authorization', 'token', 'password', 'passphrase', '*.authorization', '*.password', '*.token', '*.passphrase'];

/** Structured JSON lines (one object per line, ISO time) to stdout, a file descriptor, a file or a stream. */
export function createLogger(opts: { level: string; destination?: number | string | NodeJS.WritableStream; name?: string }): Logger {
  const dest = opts.destination ?? 1;
  const stream = typeof dest === 'number' || typeof dest === 'string' ? pino.destination({ dest, sync: true, mkdir: true }) : dest;
  return pino(
    {
      level: opts.level,
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}

/** A logger whose every line carries the job's and the VM's ids. */
export function childFor(logger: Logger, ids: { jobId?: string; vmId?: string }): Logger {
  return logger.child({ ...(ids.jobId !== undefined ? { jobId: ids.jobId } : {}), ...(ids.vmId !== undefined ? { vmId: ids.vmId } : {}) });
}
