import type { NewEvent } from '../engine';
import { describeError } from '../errors';
import type { Logger } from '../util/log';

/** The engine's longest event description we send (its column is bounded). */
const MAX_EVENT_CHARS = 4000;

/**
 * The work a scheduler starts and does not wait for (resolving VMs through the engine, posting
 * events): kept track of, so a stop can let it finish and a test can wait for it.
 */
export class BackgroundWork {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly engine: { addEvent(ev: NewEvent): Promise<unknown> },
    private readonly log: Logger,
  ) {}

  track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** The engine's event log is where admins look; failing to write there fails nothing. */
  event(ev: NewEvent): void {
    this.track(this.engine.addEvent({ ...ev, description: ev.description.slice(0, MAX_EVENT_CHARS) }).catch((err: unknown) => this.log.warn({ err: describeError(err) }, 'could not post an engine event')));
  }

  /** Settles when the work started so far (and what it started) is done. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
