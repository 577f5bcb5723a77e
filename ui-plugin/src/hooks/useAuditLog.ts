/**
 * The audit log's data: the newest pages (one more on "Show older entries"), reloaded with the
 * place's `refresh`. The service shows it to backup admins only; `forbidden` says the user
 * is not one (a plain sentence, not an error with a retry).
 */
import { useState } from 'react';
import type { AuditEntry, AuditList } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import type { BackupClient } from '../services/backupClient';
import type { ActionState } from './useAction';
import { useLoader } from './useLoader';

/** Entries per request; "Show older entries" adds a page. */
const PAGE = 200;

export interface AuditLog {
  /** Newest first. */
  entries: AuditEntry[];
  forbidden: boolean;
  error: unknown;
  reload: () => void;
  /** "Show older entries" (busy while pages load); null when the oldest entry is shown. */
  showOlder: ActionState | null;
}

export function useAuditLog(refresh: unknown[]): AuditLog {
  const { client } = useApp();
  const [pages, setPages] = useState(1);
  const audit = useLoader(() => firstPages(client, pages), [...refresh, pages]);
  return {
    entries: audit.data?.entries ?? [],
    forbidden: (audit.error as { kind?: string } | null)?.kind === 'forbidden',
    error: audit.error,
    reload: audit.reload,
    showOlder: audit.data?.nextCursor ? { run: () => setPages((n) => n + 1), busy: audit.loading } : null,
  };
}

/** The newest `pages` pages, following the service's cursors. */
async function firstPages(client: BackupClient, pages: number): Promise<AuditList> {
  const entries: AuditEntry[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < pages; i++) {
    const page: AuditList = await client.auditList({ limit: PAGE, ...(cursor ? { cursor } : {}) });
    entries.push(...page.entries);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return { entries, nextCursor: cursor };
}
