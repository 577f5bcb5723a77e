import { describeError, isAppError } from '../../errors';
import type { EngineClient } from '../../engine';
import { sleep } from '../../util/abort';
import { cancelTransfer } from './transfer';

/**
 * What a restore has created in the engine so far, recorded before each creating call (a call
 * that timed out may still have created its object), and undone in reverse dependency order on
 * failure: live transfers cancelled (the engine deletes an upload's disk), attachments undone,
 * the VM removed with its disks kept (they are removed one by one below, so only our own disks
 * go), the disks removed. Each step is bounded and runs without the restore's
 * AbortSignal: an aborted restore must still clean up.
 */
export class Rollback {
  private readonly transfers = new Map<string, string>();
  private readonly disks = new Map<string, string>();
  private vm: { id: string | null; name: string } | undefined;
  private readonly attachments: Array<{ vmId: string; diskId: string; diskName: string }> = [];

  transferStarted(id: string, diskName: string): void {
    this.transfers.set(id, diskName);
  }

  transferEnded(id: string): void {
    this.transfers.delete(id);
  }

  diskRequested(id: string, name: string): void {
    this.disks.set(id, name);
  }

  /** The engine answered the create call with an error: it created nothing (and a 409 "id in
   *  use" means the disk there is not ours to remove). */
  diskRefused(id: string): void {
    this.disks.delete(id);
  }

  /** `id` null: the create call failed without an answer; the VM is looked up by name. */
  vmRequested(id: string | null, name: string): void {
    this.vm = { id, name };
  }

  vmRefused(): void {
    this.vm = undefined;
  }

  attachRequested(vmId: string, diskId: string, diskName: string): void {
    this.attachments.push({ vmId, diskId, diskName });
  }

  attachRefused(vmId: string, diskId: string): void {
    const i = this.attachments.findIndex((a) => a.vmId === vmId && a.diskId === diskId);
    if (i >= 0) this.attachments.splice(i, 1);
  }

  /** Undoes everything; returns what could not be undone (empty = the engine is as before). */
  async run(engine: EngineClient, o: { timeoutMs: number; engineRequestMs?: number; log?: (msg: string) => void }): Promise<string[]> {
    const left: string[] = [];
    const call = { timeoutMs: o.engineRequestMs };
    const step = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
        o.log?.(`clean-up: ${what}`);
      } catch (err) {
        left.push(`${what} failed: ${describeError(err)}`);
      }
    };
    for (const [id, diskName] of this.transfers) {
      await step(`cancelled the transfer of disk ${diskName}`, () => cancelTransfer(engine, id, { timeoutMs: o.timeoutMs, engineRequestMs: o.engineRequestMs }));
    }
    for (const a of [...this.attachments].reverse()) {
      await step(`detached disk ${a.diskName}`, () => ignoreNotFound(engine.detachDisk(a.vmId, a.diskId, call)));
    }
    const vm = this.vm;
    if (vm) {
      await step(`removed vm ${vm.name}`, async () => {
        const id = vm.id ?? (await engine.findVmByName(vm.name, call))?.id;
        if (id === undefined) return;
        await ignoreNotFound(engine.removeVm(id, { ...call, detachOnly: true }));
        await engine.waitForVmGone(id, { timeoutMs: o.timeoutMs });
      });
    }
    for (const [id, name] of this.disks) {
      await step(`removed disk ${name}`, () => removeDiskWhenUnlocked(engine, id, o.timeoutMs, o.engineRequestMs));
    }
    return left;
  }
}

/** A disk still locked (by a transfer being cancelled, or its own creation) is waited for;
 *  one that is already gone is fine. */
async function removeDiskWhenUnlocked(engine: EngineClient, id: string, timeoutMs: number, engineRequestMs?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = 100;
  for (;;) {
    const disk = await engine.getDisk(id, { timeoutMs: engineRequestMs }).catch((err: unknown) => {
      if (isAppError(err, 'ENGINE_NOT_FOUND')) return null;
      throw err;
    });
    if (disk === null) return;
    if (disk.status !== 'locked') {
      await ignoreNotFound(engine.removeDisk(id, { timeoutMs: engineRequestMs }));
      await engine.waitForDiskGone(id, { timeoutMs: Math.max(1000, deadline - Date.now()) });
      return;
    }
    if (Date.now() + pause > deadline) throw new Error(`disk ${id} stayed locked for ${timeoutMs} ms`);
    await sleep(pause);
    pause = Math.min(pause * 2, 2000);
  }
}

async function ignoreNotFound(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (err) {
    // removing what is gone already (the engine did it, e.g. a cancelled upload): nothing to undo
    if (!isAppError(err, 'ENGINE_NOT_FOUND')) throw err;
  }
}
