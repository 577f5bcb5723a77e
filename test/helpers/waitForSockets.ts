import * as net from 'net';
import { sleep } from '../../backend/src/util/abort';

/** Whether something accepts connections on the unix socket now (the probe is closed at once). */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Waits until a freshly spawned QEMU (or qemu-ga) accepts connections on all its sockets. The
 * socket file appears at bind(), before listen(): on a loaded machine a client connecting in
 * between is refused, so a file that exists is not enough. `exitedWhy` returns a reason once the
 * process has died (then waiting is pointless); gives up after `timeoutMs`.
 */
export async function waitForSockets(paths: string[], exitedWhy: () => string | undefined, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(paths);
  for (;;) {
    for (const p of [...pending]) if (await accepts(p)) pending.delete(p);
    if (pending.size === 0) return;
    const why = exitedWhy();
    if (why !== undefined) throw new Error(`qemu exited at start: ${why}`);
    if (Date.now() > deadline) throw new Error(`no one accepts connections on ${[...pending].join(', ')} within ${timeoutMs} ms`);
    await sleep(20);
  }
}
