import { AppError, describeError } from '../errors';
import type { GuestAgent } from '../qmp';
import type { ConsistencyMode } from './model';

export interface ConsistencyOptions {
  mode: ConsistencyMode;
  /** Opens the VM's guest agent channel; absent = no channel known for this VM. */
  openAgent?: (() => Promise<GuestAgent>) | undefined;
  /** An agent that does not answer a ping within this is taken as absent (default 2 s). */
  pingTimeoutMs?: number;
  /** guest-fsfreeze-freeze may take long on a busy guest (default 30 s). */
  freezeTimeoutMs?: number;
  /** Each thaw attempt (default 10 s); a failed thaw is retried once. */
  thawTimeoutMs?: number;
  signal?: AbortSignal | undefined;
}

export interface FrozenGuest {
  /** What the point will be, and why; final once `fixPoint` ran. */
  readonly consistency: 'filesystem' | 'crash';
  readonly reason: string;
  /**
   * Thaws the guest if this froze it (or may have: a freeze that timed out may still complete
   * in the guest) and closes the channel. Never throws: returns the warning to report when the
   * guest may still be frozen. Idempotent.
   */
  release(): Promise<string | undefined>;
}

/**
 * Freezes the guest's filesystems through the QEMU guest agent when one answers a ping, so
 * that the QMP transaction run next fixes a filesystem-consistent point; otherwise the point is
 * crash-consistent and `reason` says why. The caller runs the transaction and calls `release()`
 * in `finally` right after it, whatever happened: the thaw has its own timeout (not the backup's
 * signal: an aborted backup must still thaw) and is retried once.
 */
export async function freezeGuest(opts: ConsistencyOptions): Promise<FrozenGuest> {
  const guest = await tryFreeze(opts);
  if (opts.mode !== 'filesystem' || guest.consistency === 'filesystem') return guest;
  // `filesystem` was asked: a crash-consistent point is a failure, after the guest is let go
  const problem = await guest.release();
  throw new AppError('BACKUP_NOT_CONSISTENT', `filesystem consistency was required and the guest could not be frozen: ${guest.reason}`, {
    ...(problem ? { details: { cleanupProblems: [problem] } } : {}),
  });
}

async function tryFreeze(opts: ConsistencyOptions): Promise<FrozenGuest> {
  const none = (): Promise<undefined> => Promise.resolve(undefined);
  if (opts.mode === 'crash') return { consistency: 'crash', reason: 'crash-consistent by request', release: none };
  if (!opts.openAgent) return { consistency: 'crash', reason: 'no guest agent channel known for this vm', release: none };
  const call = (timeoutMs: number): { timeoutMs: number; signal?: AbortSignal } => ({ timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
  const pingMs = opts.pingTimeoutMs ?? 2000;

  let agent: GuestAgent | undefined;
  try {
    agent = await opts.openAgent();
    await agent.ping(call(pingMs));
  } catch (err) {
    await agent?.close().catch(() => undefined);
    if (opts.signal?.aborted) throw err;
    return { consistency: 'crash', reason: `guest agent not answering: ${describeError(err)}`, release: none };
  }
  const ga = agent;

  let frozen: number | undefined;
  let reason: string;
  let mayBeFrozen = true;
  let foreignFreeze = false;
  try {
    const status = await ga.fsfreezeStatus(call(pingMs)).catch(() => undefined);
    if (status === 'frozen') {
      // someone else froze it (another tool's snapshot, an admin): thawing under their feet
      // is not ours to do, but whoever reads the result must know the guest is frozen
      mayBeFrozen = false;
      foreignFreeze = true;
      reason = 'guest filesystems were already frozen by someone else';
    } else {
      frozen = await ga.fsfreezeFreeze(call(opts.freezeTimeoutMs ?? 30_000));
      reason = `froze ${frozen} filesystem${frozen === 1 ? '' : 's'}`;
    }
  } catch (err) {
    reason = `freeze failed: ${describeError(err)}`;
  }
  let released: Promise<string | undefined> | undefined;
  return {
    consistency: frozen !== undefined ? 'filesystem' : 'crash',
    reason,
    release: () => {
      released ??= (async () => {
        const problem = mayBeFrozen
          ? await thaw(ga, opts.thawTimeoutMs ?? 10_000)
          : foreignFreeze
            ? 'guest filesystems were frozen before the backup, not by it, and were left frozen'
            : undefined;
        await ga.close().catch(() => undefined);
        return problem;
      })();
      return released;
    },
  };
}

/** Thaws with one retry; returns the warning to report when the guest may still be frozen. */
async function thaw(agent: GuestAgent, timeoutMs: number): Promise<string | undefined> {
  // not the backup's signal: an aborted backup must still thaw the guest
  let first: unknown;
  try {
    await agent.fsfreezeThaw({ timeoutMs });
    return undefined;
  } catch (err) {
    first = err;
  }
  try {
    await agent.fsfreezeThaw({ timeoutMs });
    return undefined;
  } catch (err) {
    // a thaw of a guest that is not frozen fails on some agents: check before crying wolf
    const status = await agent.fsfreezeStatus({ timeoutMs }).catch(() => undefined);
    if (status === 'thawed') return undefined;
    return `guest filesystems may still be frozen: thaw failed twice (${describeError(first)}; ${describeError(err)}); run guest-fsfreeze-thaw through the guest agent`;
  }
}
