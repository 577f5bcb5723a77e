// The restore points table of the place and the VM tab, with each point's boot check, and
// Restore…, Verify now, Test boot and Browse files… on each point.
import { Button, List, ListItem } from '@patternfly/react-core';
import type { PointSummary } from '../../../../backend/src/api/contract';
import { useVerifyPoint } from '../../hooks/useJobActions';
import type { VmRef } from '../../logic/access';
import { formatBytes, formatDateTime, formatDuration } from '../../logic/format';
import { useTexts } from '../../context/appContext';
import { ActionButton } from './ActionButton';
import { BootStateCell, TestBootButton } from './BootCheck';
import { BrowseFilesButton } from './FileBrowser';
import { DataTable, type DataColumn } from './DataTable';
import { PointLock, PointMethodLabel, PointTypeLabel, useReasonText } from './Labels';
import { pointMethodKey } from '../../logic/backupChoices';
import { bootStateText } from '../../logic/jobText';

interface Props {
  id: string;
  points: PointSummary[];
  showVm: boolean;
  onRestore?: (p: PointSummary) => void;
  /** The point's VM as the list names it (its access flags: Verify needs backup_disk). */
  vmOf: (vmId: string) => VmRef | undefined;
}

/** Restore points: time, full/incremental per disk, read, stored, method, consistency, duration; Restore… on each when asked. */
export function PointsTable({ id, points, showVm, onRestore, vmOf }: Props) {
  const { t, locale } = useTexts();
  const reason = useReasonText();
  const columns: Array<DataColumn<PointSummary>> = [
    { key: 'time', title: t('colTime'), sortValue: (p) => Date.parse(p.completedAt), filterText: (p) => p.id, render: (p) => formatDateTime(p.completedAt, locale) },
    ...(showVm ? [{ key: 'vm', title: t('colVm'), sortValue: (p: PointSummary) => p.vmName, filterText: (p: PointSummary) => p.vmName, render: (p: PointSummary) => p.vmName }] : []),
    { key: 'type', title: t('colType'), render: (p) => <PointTypeLabel point={p} /> },
    {
      key: 'disks',
      title: t('colDisks'),
      filterText: (p) => p.disks.map((d) => d.alias ?? d.device).join(' '),
      render: (p) => (
        <List isPlain>
          {p.disks.map((d) => (
            <ListItem key={d.device}>
              {d.alias ?? d.device}: {d.mode === 'full' ? `${t('typeFull')} (${reason(d.reason)})` : t('typeIncremental')}
            </ListItem>
          ))}
        </List>
      ),
    },
    { key: 'read', title: t('colRead'), sortValue: (p) => p.bytesRead, render: (p) => formatBytes(p.bytesRead, locale) },
    { key: 'stored', title: t('colStored'), sortValue: (p) => p.bytesStored, render: (p) => formatBytes(p.bytesStored, locale) },
    {
      key: 'method',
      title: t('colMethod'),
      sortValue: (p) => p.method,
      filterText: (p) => t(pointMethodKey(p.method)),
      render: (p) => <PointMethodLabel id={`point-method-${p.id}`} method={p.method} />,
    },
    { key: 'consistency', title: t('colConsistency'), sortValue: (p) => p.consistency, render: (p) => (p.consistency === 'filesystem' ? t('consistencyFilesystem') : t('consistencyCrash')) },
    { key: 'duration', title: t('colDuration'), sortValue: (p) => p.durationSeconds, render: (p) => formatDuration(p.durationSeconds) },
    {
      key: 'boot',
      title: t('colBoot'),
      sortValue: (p) => p.bootCheck?.state ?? '',
      filterText: (p) => bootStateText(p.bootCheck ?? null, t),
      render: (p) => <BootStateCell point={p} />,
    },
    { key: 'locked', title: t('colLocked'), sortValue: (p) => (p.lockedUntil ? Date.parse(p.lockedUntil) : null), render: (p) => <PointLock point={p} /> },
    {
      key: 'actions',
      title: t('colActions'),
      render: (p: PointSummary) => (
        <>
          {onRestore ? (
            <Button id={`point-restore-${p.id}`} variant="link" isInline onClick={() => onRestore(p)} aria-label={t('restorePointOf', { vm: p.vmName, time: formatDateTime(p.completedAt, locale) })}>
              {t('restoreButton')}
            </Button>
          ) : null}{' '}
          <VerifyButton point={p} vm={vmOf(p.vmId)} /> <TestBootButton point={p} vm={vmOf(p.vmId)} /> <BrowseFilesButton point={p} vm={vmOf(p.vmId)} />
        </>
      ),
    },
  ];
  return (
    <DataTable
      id={id}
      ariaLabel={t('tabPoints')}
      columns={columns}
      rows={points}
      rowKey={(p) => p.id}
      rowId={(p) => `point-row-${p.id}`}
      emptyText={t('noPoints')}
      initialSort={{ key: 'time', direction: 'desc' }}
    />
  );
}

/** Verify now for one point (useVerifyPoint queues it; its job shows in the jobs list, its end in a toast). */
function VerifyButton({ point, vm }: { point: PointSummary; vm: VmRef | undefined }) {
  const { t, locale } = useTexts();
  const verify = useVerifyPoint(point, vm);
  return (
    <ActionButton id={`point-verify-${point.id}`} variant="link" isInline action={verify} aria-label={t('verifyPointOf', { vm: point.vmName, time: formatDateTime(point.completedAt, locale) })}>
      {t('verifyButton')}
    </ActionButton>
  );
}
