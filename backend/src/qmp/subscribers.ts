import type { QmpEvent, QmpEventListener } from './events';

/**
 * The event and close subscriptions every QmpSession offers, kept in one place for the
 * transports (a QMP socket, virsh passthrough). A listener's exception never stops delivery.
 */
export class SessionSubscribers {
  private readonly events = new Set<QmpEventListener>();
  private readonly closes = new Set<(reason: Error | undefined) => void>();
  private ended: { reason: Error | undefined } | undefined;

  get closed(): boolean {
    return this.ended !== undefined;
  }

  /** Why the session ended; undefined while open or after a clean close. */
  get closedReason(): Error | undefined {
    return this.ended?.reason;
  }

  onEvent(listener: QmpEventListener): () => void {
    this.events.add(listener);
    return () => this.events.delete(listener);
  }

  /** A listener added after the end is called at once (on the next microtask). */
  onClose(listener: (reason: Error | undefined) => void): () => void {
    if (this.ended) {
      const reason = this.ended.reason;
      queueMicrotask(() => listener(reason));
      return () => undefined;
    }
    this.closes.add(listener);
    return () => this.closes.delete(listener);
  }

  emit(event: QmpEvent): void {
    for (const l of [...this.events]) {
      try {
        l(event);
      } catch {
        // a listener's bug must not break delivery to the others or the session
      }
    }
  }

  /** Ends the session once: `whileClosing` runs first (reject pending work), then the close
   *  listeners. Returns false when it had already ended. */
  close(reason: Error | undefined, whileClosing?: () => void): boolean {
    if (this.ended) return false;
    this.ended = { reason };
    whileClosing?.();
    for (const l of [...this.closes]) l(reason);
    this.closes.clear();
    return true;
  }
}
