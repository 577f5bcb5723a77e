/**
 * The audit log (deletions, prunes, lock changes, server-shell unlocks, damage, restores,
 * policy changes, refused logins), newest first, as useAuditLog loads it. Anyone but an engine
 * SuperUser gets a plain sentence saying the log is not theirs to read.
 */
import { Alert, Button } from '@patternfly/react-core';
import type { AuditEntry, VmSummary } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { useAuditLog } from '../../hooks/useAuditLog';
import { keyOf } from '../../intl/messages';
import { formatDateTime } from '../../logic/format';
import { DataTable, type DataColumn } from '../common/DataTable';
import { ServiceErrorAlert } from '../common/StatusAlerts';

type Row = AuditEntry & { seq: number };

export function AuditTab({ vms, refresh }: { vms: VmSummary[]; refresh: unknown[] }) {
  const { t, locale } = useTexts();
  const audit = useAuditLog(refresh);
  const names = new Map(vms.map((v) => [v.id, v.name]));
  if (audit.forbidden) {
    return <Alert id="audit-forbidden" variant="info" isInline title={t('auditForbidden')} />;
  }
  const rows: Row[] = audit.entries.map((e, seq) => ({ ...e, seq }));
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
      {audit.showOlder ? (
        <Button id="audit-older" variant="link" isInline isLoading={audit.loading} isDisabled={audit.loading} onClick={audit.showOlder}>
          {t('auditOlder')}
        </Button>
      ) : null}
    </>
  );
}
