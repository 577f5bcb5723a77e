/**
 * The audit log (deletions, prunes, lock changes, server-shell unlocks, damage, restores,
 * policy changes, refused logins and refused actions), newest first, as useAuditLog loads it.
 * It is a backup admin's to read: anyone else gets a plain sentence saying why, and the log is
 * not asked for — not before whoami has answered either: a refused read would be audited as a
 * denied action of theirs. (A 403 all the same says the same sentence.)
 */
import { Alert, Spinner } from '@patternfly/react-core';
import type { AuditEntry, VmSummary } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { useAuditLog } from '../../hooks/useAuditLog';
import { keyOf, type Translate } from '../../intl/messages';
import { adminDenial, deniedText, type Caller } from '../../logic/access';
import { formatDateTime } from '../../logic/format';
import { ActionButton } from '../common/ActionButton';
import { DataTable, type DataColumn } from '../common/DataTable';
import { ServiceErrorAlert } from '../common/StatusAlerts';

type Row = AuditEntry & { seq: number };

export function AuditTab({ vms, refresh, me }: { vms: VmSummary[]; refresh: unknown[]; me: Caller }) {
  const { t } = useTexts();
  if (!me) return <Spinner size="md" aria-label={t('loading')} />;
  const denied = deniedText(t, adminDenial(me, 'deniedAudit'));
  if (denied) return <Alert id="audit-forbidden" variant="info" isInline title={denied} />;
  return <AuditLog vms={vms} refresh={refresh} />;
}

/** What an entry's reason column says: a refused action names the request it refused. */
function reasonOf(e: AuditEntry, t: Translate): string {
  if (e.kind === 'access-denied' && e.details && typeof e.details['method'] === 'string' && typeof e.details['path'] === 'string') {
    return t('auditAccessDeniedReason', { reason: e.reason ?? '', method: e.details['method'], path: e.details['path'] });
  }
  return e.reason ?? '—';
}

function AuditLog({ vms, refresh }: { vms: VmSummary[]; refresh: unknown[] }) {
  const { t, locale } = useTexts();
  const audit = useAuditLog(refresh);
  const names = new Map(vms.map((v) => [v.id, v.name]));
  if (audit.forbidden) {
    return <Alert id="audit-forbidden" variant="info" isInline title={t('deniedAudit')} />;
  }
  const rows: Row[] = audit.entries.map((e, seq) => ({ ...e, seq }));
  const vmOf = (e: Row): string => (e.vmKey ? (names.get(e.vmKey) ?? e.vmKey) : '—');
  const columns: Array<DataColumn<Row>> = [
    { key: 'time', title: t('colTime'), sortValue: (e) => Date.parse(e.time) * 10_000 - e.seq, render: (e) => formatDateTime(e.time, locale) },
    { key: 'kind', title: t('colKind'), sortValue: (e) => e.kind, filterText: (e) => `${e.kind} ${t(keyOf('auditKind', e.kind))}`, render: (e) => <span data-kind={e.kind}>{t(keyOf('auditKind', e.kind))}</span> },
    { key: 'actor', title: t('colActor'), sortValue: (e) => e.actor, filterText: (e) => e.actor, render: (e) => e.actor },
    { key: 'vm', title: t('colVm'), sortValue: (e) => vmOf(e), filterText: (e) => vmOf(e), render: (e) => vmOf(e) },
    { key: 'point', title: t('colPoint'), filterText: (e) => e.pointId ?? '', render: (e) => (e.pointId ? <code>{e.pointId}</code> : '—') },
    { key: 'reason', title: t('colReason'), filterText: (e) => reasonOf(e, t), render: (e) => reasonOf(e, t) },
    { key: 'source', title: t('colSource'), sortValue: (e) => e.source, render: (e) => e.source },
  ];
  return (
    <>
      <ServiceErrorAlert id="audit-error" error={audit.error} onRetry={audit.reload} />
      <DataTable id="audit-table" ariaLabel={t('auditTitle')} columns={columns} rows={rows} rowKey={(e) => String(e.seq)} rowId={(e) => `audit-row-${e.seq}`} emptyText={t('noAudit')} initialSort={{ key: 'time', direction: 'desc' }} perPage={20} />
      {audit.showOlder ? (
        <ActionButton id="audit-older" variant="link" isInline action={audit.showOlder}>
          {t('auditOlder')}
        </ActionButton>
      ) : null}
    </>
  );
}
