import { promises as fs } from 'fs';
import { sleep } from '../../backend/src/util/abort';

/**
 * Waits until a freshly spawned QEMU has created all its QMP sockets. `exitedWhy` returns a
 * reason once the process has died (then waiting is pointless); gives up after `timeoutMs`.
 */
export async function waitForSockets(paths: string[], exitedWhy: () => string | undefined, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      for (const p of paths) await fs.stat(p);
      return;
    } catch {
      const why = exitedWhy();
      if (why !== undefined) throw new Error(`qemu exited at start: ${why}`);
      if (Date.now() > deadline) throw new Error(`qemu did not create its qmp sockets ${paths.join(', ')} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }
}
