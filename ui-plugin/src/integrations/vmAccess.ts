// The host page's copy of what the user may do to each VM (GET /vms access flags), for WebAdmin's
// synchronous isEnabled, and the reason shown on WebAdmin's own button.
import { logError } from './pluginApi';
import type { VmRef } from '../logic/access';
import type { BackupClient } from '../services/backupClient';

/** An answer older than this is asked for again at the next selection change. */
const STALE_MS = 30_000;

/**
 * WebAdmin asks `isEnabled` synchronously on each selection change (reference §2.4), so the
 * access flags must be at hand before: loaded at UiInit, and again at a selection change when
 * stale or naming a VM not in the last answer. What is not known yet is not denied (the click
 * then reaches the service, which refuses with the missing permit).
 */
export class VmAccessWatch {
  private byId = new Map<string, VmRef>();
  private loadedAt = 0;
  private loading: Promise<void> | null = null;

  constructor(private readonly client: BackupClient) {}

  vm(id: string): VmRef | undefined {
    return this.byId.get(id);
  }

  /** Loads the flags now (one request at a time). */
  refresh(): Promise<void> {
    this.loading ??= this.client
      .vmList()
      .then((list) => {
        this.byId = new Map(list.vms.map((v) => [v.id, { id: v.id, name: v.name, access: v.access }]));
        this.loadedAt = Date.now();
      })
      .catch((err: unknown) => logError('cannot read what you may do to the VMs', err))
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  /** At a selection change: refresh when stale, or when a selected VM is unknown. */
  selected(ids: readonly string[]): void {
    if (Date.now() - this.loadedAt > STALE_MS || ids.some((id) => !this.byId.has(id))) void this.refresh();
  }
}

/**
 * WebAdmin's plugin buttons have no tooltip of their own: the reason a button is disabled goes
 * into the `title` of its element in WebAdmin's document (DOM id `<container>_<button id>`,
 * §2.4, 4.4+), once WebAdmin has drawn it after isEnabled. Best effort: nothing breaks if the
 * element is not found.
 */
export function showButtonReason(buttonId: string, reason: string | undefined): void {
  setTimeout(() => {
    try {
      const doc = window.top?.document;
      if (!doc) return;
      for (const el of Array.from(doc.querySelectorAll(`[id$="_${buttonId}"]`))) {
        if (reason) el.setAttribute('title', reason);
        else el.removeAttribute('title');
      }
    } catch (err) {
      logError('cannot mark the button with its reason', err);
    }
  }, 0);
}
