// The place's VMs tab: every VM the user may see, its last backup and chain, Backup now.
import type { VmSummary } from '../../../../backend/src/api/contract';
import { formatDateTime } from '../../logic/format';
import { useTexts } from '../../context/appContext';
import { BackupNowButton } from '../common/BackupNowButton';
import { DataTable, type DataColumn } from '../common/DataTable';
import { ChainLabel, JobStateLabel, useReasonText } from '../common/Labels';

/** The VMs the user may see, their last backup, chain state and a Backup now button each. */
export function VmsTable({ vms }: { vms: VmSummary[] }) {
  const { t, locale } = useTexts();
  const reason = useReasonText();
  const columns: Array<DataColumn<VmSummary>> = [
    { key: 'name', title: t('colVm'), sortValue: (v) => v.name, filterText: (v) => v.name, render: (v) => v.name },
    { key: 'status', title: t('colStatus'), sortValue: (v) => v.status, filterText: (v) => v.status, render: (v) => v.status },
    { key: 'last', title: t('colLastBackup'), sortValue: (v) => (v.lastPoint ? Date.parse(v.lastPoint.completedAt) : null), render: (v) => formatDateTime(v.lastPoint?.completedAt, locale) },
    { key: 'job', title: t('colState'), render: (v) => (v.lastJob ? <JobStateLabel state={v.lastJob.state} /> : '—') },
    { key: 'points', title: t('colPoints'), sortValue: (v) => v.pointCount, render: (v) => <span id={`vm-points-${v.id}`}>{v.pointCount}</span> },
    {
      key: 'chain',
      title: t('colChain'),
      render: (v) => (
        <>
          {v.chain.map((d) => (
            <span key={d.diskId} id={`vm-chain-${v.id}-${d.diskId}`} data-reason={d.reason ?? ''} style={{ marginRight: 4 }} title={d.reason && !d.excluded ? `${d.alias}: ${reason(d.reason)}` : d.alias}>
              <ChainLabel disk={d} />
            </span>
          ))}
        </>
      ),
    },
    { key: 'actions', title: t('colActions'), render: (v) => <BackupNowButton vm={v} variant="link" /> },
  ];
  return <DataTable id="vms-table" ariaLabel={t('tabVms')} columns={columns} rows={vms} rowKey={(v) => v.id} rowId={(v) => `vm-row-${v.id}`} emptyText={t('noVms')} initialSort={{ key: 'name', direction: 'asc' }} />;
}
