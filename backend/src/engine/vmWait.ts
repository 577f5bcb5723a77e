import { AppError, isAppError } from '../errors';
import { raceAbort, sleep } from '../util/abort';
import type { EngineConnection } from './connection';
import type { Vm, VmStatus } from './types';
import { getVm } from './vms';

export interface WaitForVmStatusOptions {
  timeoutMs: number;
  /** Poll period; default 2 s. */
  intervalMs?: number;
  signal?: AbortSignal;
}

/** Polls the VM until its status is one of `wanted`; resolves with that reading of the VM. */
export async function waitForVmStatus(
  conn: EngineConnection,
  id: string,
  wanted: readonly VmStatus[],
  opts: WaitForVmStatusOptions,
): Promise<Vm> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 2000;
  let last: Vm | undefined;
  const timedOut = (): AppError =>
    new AppError(
      'ENGINE_TIMEOUT',
      `vm ${last?.name ?? id} did not reach ${wanted.join('|')} within ${opts.timeoutMs} ms (last status: ${last?.status ?? 'not read'})`,
      { details: { vmId: id, wanted: [...wanted], lastStatus: last?.status } },
    );
  for (;;) {
    if (opts.signal?.aborted) throw new AppError('ENGINE_ABORTED', `waiting for vm ${last?.name ?? id} aborted`, { cause: opts.signal.reason });
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw timedOut();
    try {
      last = await getVm(conn, id, { signal: opts.signal, timeoutMs: Math.min(remaining, conn.timeoutMs) });
    } catch (err) {
      if (isAppError(err, 'ENGINE_TIMEOUT') && Date.now() >= deadline) throw timedOut();
      throw err;
    }
    if (wanted.includes(last.status)) return last;
    const pause = Math.min(interval, deadline - Date.now());
    if (pause > 0) {
      try {
        await (opts.signal ? raceAbort(sleep(pause), opts.signal) : sleep(pause));
      } catch (err) {
        throw new AppError('ENGINE_ABORTED', `waiting for vm ${last.name} aborted`, { cause: err });
      }
    }
  }
}
