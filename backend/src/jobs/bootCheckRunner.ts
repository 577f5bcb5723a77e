/**
 * Runs a boot check job: one point started in an isolated QEMU on this machine
 * (restore/bootCheck.ts, which stores the verdict on the point); the job reports the verdict. A
 * verdict of failed or timeout is a result, not a job failure: the job failed only when no
 * verdict could be reached (the point unreadable, QEMU missing).
 */
import type { BootCheckRecord, Repository } from '../repository';
import { bootCheck } from '../restore';
import type { Logger } from '../util/log';
import type { JobResult } from './model';
import type { BootCheckSpec } from './spec';
import type { JobRunner } from './types';

export interface BootCheckRunnerDeps {
  repository: Repository;
  /** The wait for a sign of life (config bootCheck.timeoutSeconds). */
  timeoutMs: number;
  /** The console line that means "up" (config bootCheck.expect); undefined: bootCheck's default. */
  expect?: RegExp;
  /** Where the private directories are made (the service's scratch space). */
  workDir?: string;
  log?: Logger;
  /** The record was stored: the catalog's point summary shows it. */
  onChecked?: (record: BootCheckRecord) => void;
}

export function bootCheckRunner(deps: BootCheckRunnerDeps): JobRunner<BootCheckSpec> {
  return async (ctx) => {
    const { pointId, disk } = ctx.spec;
    const started = Date.now();
    // no byte counts: a boot has no measure of how far it got (the timeout bounds it)
    ctx.progress({ phase: 'booting', disk, bytesDone: 0, bytesTotal: 0, disksDone: 0, disksTotal: 1 });
    ctx.log('info', `booting restore point ${pointId}${disk ? ` from disk ${disk}` : ''} in an isolated VM (no network), waiting at most ${Math.round(deps.timeoutMs / 1000)} s for a sign of life`);
    const result = await bootCheck({
      repository: deps.repository,
      pointId,
      ...(disk ? { disk } : {}),
      timeoutMs: deps.timeoutMs,
      ...(deps.expect ? { expect: deps.expect } : {}),
      actor: `service:${ctx.job.requestedBy.name}`,
      ...(deps.workDir ? { workDir: deps.workDir } : {}),
      ...(deps.log ? { log: deps.log.child({ jobId: ctx.job.id, pointId }) } : {}),
      // a cancel or the service's shutdown stops the wait: QEMU is killed at once
      signal: ctx.signal,
    });
    deps.onChecked?.(result.record);
    // a cancel that came after the verdict was reached still ends the job as cancelled
    if (ctx.signal.aborted) throw ctx.signal.reason;
    ctx.log(result.state === 'ok' ? 'info' : 'error', `boot check ${result.state === 'ok' ? 'passed' : result.state === 'timeout' ? 'timed out' : 'failed'} under ${result.accel}: ${result.reason}`);
    if (!result.noNetworkDevice) ctx.log('warn', 'the isolated VM showed a network controller');
    const out: JobResult = {
      pointId,
      bytesRead: 0,
      bytesStored: 0,
      durationMs: Date.now() - started,
      disks: [],
      warnings: [],
      bootCheck: { state: result.state, reason: result.reason, durationMs: result.durationMs, accel: result.accel },
    };
    return out;
  };
}
