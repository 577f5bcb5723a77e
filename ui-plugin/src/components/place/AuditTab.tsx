import { Alert, Button } from '@patternfly/react-core';
import { useState } from 'react';
import type { AuditEntry, AuditList, VmSummary } from '../../../../backend/src/api/contract';
import { useLoader } from '../../hooks/useLoader';
import { keyOf } from '../../intl/messages';
import { formatDateTime } from '../../logic/format';
import type { BackupClient } from '../../services/backupClient';
import { useApp } from '../AppContext';
import { DataTable, type DataColumn } from '../common/DataTable';
import { ServiceErrorAlert } from '../common/StatusAlerts';

type Row = AuditEntry & { seq: number };

/** Entries per request; "Show older entries" adds a page. */
const PAGE = 200;

/**
 * The audit log (deletions, prunes, lock changes, server-shell unlocks, damage, restores,
 * policy changes, refused logins), newest first. The service shows it to engine SuperUsers only:
 * anyone else gets a plain sentence saying so, not an error with a retry.
 */
export function AuditTab({ vms, refresh }: { vms: VmSummary[]; refresh: unknown[] }) {
  const { client, t, locale } = useApp();
  const [pages, setPages] = useState(1);
  const audit = useLoader(() => firstPages(client, pages), [...refresh, pages]);
  const names = new Map(vms.map((v) => [v.id, v.name]));
  if ((audit.error as { kind?: string } | null)?.kind === 'forbidden') {
    return <Alert id="audit-forbidden" variant="info" isInline title={t('auditForbidden')} />;
  }
  const rows: Row[] = (audit.data?.entries ?? []).map((e, seq) => ({ ...e, seq }));
  const vmOf = (e: Row): string => (e.vmKey ? (names.get(e.vmKey) ?? e.vmKey) : '—');
  const columns: Array<DataColumn<Row>> = [
    { key: 'time', title: t('colTime'), sortValue: (e) => Date.parse(e.time) * 10_000 - e.seq, render: (e) => formatDateTime(e.time, locale) },
    { key: 'kind', title: t('colKind'), sortValue: (e) => e.kind, filterText: (e) => `${e.kind} ${t(keyOf('auditKind', e.kind))}`, render: (e) => <span data-kind={e.kind}>{t(keyOf('auditKind', e.kind))}</span> },
    { key: 'actor', title: t('colActor'), sortValue: (e) => e.actor, filterText: (e) => e.actor, render: (e) => e.actor },
    { key: 'vm', title: t('colVm'), sortValue: (e) => vmOf(e), filterText: (e) => vmOf(e), render: (e) => vmOf(e) },
    { key: 'point', title: t('colPoint'), filterText: (e) => e.pointId ?? '', render: (e) => (e.pointId ? <code>{e.pointId}</code> : '—') },
    { key: 'reason', title: t('colReason'), filterText: (e) => e.reason ?? '', render: (e) => e.reason ?? '—' },
    { key: 'source', title: t('colSource'), sortValue: (e) => e.source, render: (e) => e.source },
  ];
  return (
    <>
      <ServiceErrorAlert id="audit-error" error={audit.error} onRetry={audit.reload} />
      <DataTable id="audit-table" ariaLabel={t('auditTitle')} columns={columns} rows={rows} rowKey={(e) => String(e.seq)} rowId={(e) => `audit-row-${e.seq}`} emptyText={t('noAudit')} initialSort={{ key: 'time', direction: 'desc' }} perPage={20} />
      {audit.data?.nextCursor ? (
        <Button id="audit-older" variant="link" isInline isLoading={audit.loading} isDisabled={audit.loading} onClick={() => setPages((n) => n + 1)}>
          {t('auditOlder')}
        </Button>
      ) : null}
    </>
  );
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
