// Establishing an NBD connection: the stream opened, the handshake run under one timeout and
// abort signal, and everything torn down if any of it fails.
import { AppError } from '../errors';
import { withTimeout } from '../util/abort';
import { HandshakeReader, negotiate, type NegotiatedExport } from './handshake';
import type { Transport } from './transport';
import type { NbdConnectOptions } from './types';

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** What the caller builds on a negotiated connection, started with the bytes read past the handshake. */
export interface Established<C> {
  value: C;
  start(leftover: Buffer): void;
  destroy(reason?: Error): void;
}

/**
 * Opens the stream (`open`), negotiates `opts.exportName` and hands the transport to `create`.
 * A timeout or abort tears the stream down, which is what unblocks a handshake stuck on a
 * silent server; on any failure nothing is left open.
 */
export async function establish<C>(
  label: string,
  opts: NbdConnectOptions,
  open: () => { transport: Transport; connected: Promise<void> },
  create: (transport: Transport, negotiated: NegotiatedExport) => Established<C>,
): Promise<C> {
  const where = `nbd export '${opts.exportName}' (${label})`;
  let transport: Transport | undefined;
  let client: Established<C> | undefined;
  try {
    return await withTimeout(
      `connecting to ${where}`,
      opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      opts.signal,
      async (signal) => {
        const opened = open();
        transport = opened.transport;
        const t = transport;
        const reader = new HandshakeReader();
        t.setSink(reader);
        t.onEnd((err) =>
          reader.fail(new AppError('NBD_CONNECT_FAILED', `nbd server on ${label} closed the connection during the handshake with export '${opts.exportName}'`, { cause: err })),
        );
        // Tearing the stream down is what unblocks a handshake stuck on a silent server.
        const onAbort = (): void => t.destroy(signal.reason instanceof Error ? signal.reason : undefined);
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          await opened.connected;
          const negotiated = await negotiate(
            { read: (n) => reader.read(n), write: (b) => t.write(b) },
            { exportName: opts.exportName, metaContexts: opts.metaContexts ?? [], label },
          );
          if (t.isEnded) throw new AppError('NBD_DISCONNECTED', `${where} closed right after the handshake`);
          client = create(t, negotiated);
          client.start(reader.takeLeftover());
          return client.value;
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      },
      { timeout: 'NBD_TIMEOUT', aborted: 'NBD_ABORTED' },
    );
  } catch (err) {
    // Also covers a timeout/abort racing with a handshake that had just finished.
    if (client) client.destroy(err instanceof Error ? err : undefined);
    transport?.destroy();
    throw err;
  }
}
