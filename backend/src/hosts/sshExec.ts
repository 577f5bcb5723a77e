// Commands on a logged-in connection: the cap on exec channels open at once, a command run to
// its end with its output collected, and a long-running command read line by line.
import type { ClientChannel } from 'ssh2';
import { AppError } from '../errors';
import type { RemoteCommandResult } from '../qmp';
import { transportError, type Live } from './sshLogin';

/** At most `max` exec channels at once; the others wait in order (an abort leaves the queue). */
export class ExecSlots {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly max: number,
    private readonly hostLabel: string,
  ) {}

  take(signal?: AbortSignal): Promise<void> {
    if (this.running < this.max) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.running++;
        resolve();
      };
      const onAbort = (): void => {
        const i = this.queue.indexOf(go);
        if (i >= 0) this.queue.splice(i, 1);
        reject(new AppError('ABORTED', `command on host ${this.hostLabel} aborted while queued`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(go);
    });
  }

  release(): void {
    this.running--;
    this.queue.shift()?.();
  }
}

/** Runs `command` (already quoted) to its end: exit status, stdout and stderr; bounded by the timeout, the signal and the connection. */
export function collectOutput(
  live: Live,
  hostLabel: string,
  name: string,
  command: string,
  opts: { timeoutMs: number; signal?: AbortSignal; stdin?: string },
): Promise<RemoteCommandResult> {
  return new Promise<RemoteCommandResult>((resolve, reject) => {
    let channel: ClientChannel | undefined;
    let done = false;
    const finish = (err: Error | undefined, r?: RemoteCommandResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      live.lostListeners.delete(onLost);
      if (err) {
        channel?.close();
        reject(err);
      } else resolve(r as RemoteCommandResult);
    };
    const timer = setTimeout(() => finish(new AppError('TIMEOUT', `${name} on host ${hostLabel} did not finish within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    const onAbort = (): void => finish(new AppError('ABORTED', `${name} on host ${hostLabel} aborted`));
    const onLost = (err: Error): void => finish(err);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    live.lostListeners.add(onLost);
    live.client.exec(command, (err, ch) => {
      if (err) {
        finish(transportError(hostLabel, `cannot run ${name}`, err));
        return;
      }
      channel = ch;
      if (done) {
        ch.close();
        return;
      }
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      ch.on('data', (b: Buffer) => out.push(b));
      ch.stderr.on('data', (b: Buffer) => errOut.push(b));
      ch.on('close', (code: number | null | undefined) => {
        finish(undefined, {
          code: typeof code === 'number' ? code : null,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errOut).toString('utf8'),
        });
      });
      ch.end(opts.stdin ?? undefined);
    });
  });
}

/**
 * Starts `command` and delivers its stdout line by line until it ends, the connection is lost
 * or `stop()` (after which nothing more is delivered). `release` is called once, when it is over.
 */
export async function streamLines(
  live: Live,
  hostLabel: string,
  name: string,
  command: string,
  release: () => void,
  onLine: (line: string) => void,
  onEnd: (err: Error | undefined) => void,
): Promise<{ stop(): void }> {
  const ch = await new Promise<ClientChannel>((resolve, reject) =>
    live.client.exec(command, (err, c) => (err ? reject(transportError(hostLabel, `cannot run ${name}`, err)) : resolve(c))),
  );
  let stopped = false;
  let buf = '';
  let errText = '';
  ch.on('data', (b: Buffer) => {
    buf += b.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
  ch.stderr.on('data', (b: Buffer) => {
    errText = (errText + b.toString('utf8')).slice(-2000);
  });
  let ended = false;
  const end = (err: Error | undefined): void => {
    if (ended) return;
    ended = true;
    live.lostListeners.delete(onLost);
    release();
    if (!stopped) onEnd(err);
  };
  const onLost = (err: Error): void => end(err);
  live.lostListeners.add(onLost);
  ch.once('close', (code: number | null | undefined) => end(new AppError('TOOL_FAILED', `${name} on host ${hostLabel} ended (status ${String(code)}): ${errText.trim()}`)));
  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      // EOF on the command's stdin, then the channel is closed: a command that watches its
      // stdin (the event listener does) ends; others get SIGPIPE on their next write
      ch.end();
      ch.close();
    },
  };
}
