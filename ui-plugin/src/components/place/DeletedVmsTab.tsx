/**
 * The Deleted VMs tab (backup admins): VMs the engine no longer has whose restore points the
 * repository still holds — name, id, newest point, point count, the VM definition stored with it
 * — and Restore… on each, which opens the Restore dialog to bring it back (as a new VM or under
 * its original ids). Data and action from hooks/useDeletedVms.ts.
 */
import { Button, List, ListItem } from '@patternfly/react-core';
import type { DeletedVm } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { useDeletedVms } from '../../hooks/useDeletedVms';
import { formatBytes, formatDateTime } from '../../logic/format';
import { DataTable, type DataColumn } from '../common/DataTable';
import { ServiceErrorAlert } from '../common/StatusAlerts';

export function DeletedVmsTab({ refresh }: { refresh: unknown[] }) {
  const { t, locale } = useTexts();
  const deleted = useDeletedVms(refresh);
  // a disk's size: as backed up in the newest point, else as the definition gives it (when it does)
  const diskText = (v: DeletedVm, d: NonNullable<DeletedVm['ovf']>['disks'][number]): string => {
    const size = v.lastPoint.disks.find((p) => p.diskId === d.diskId)?.virtualSize ?? (d.sizeBytes ? d.sizeBytes : null);
    return `${d.alias ?? d.diskId}${size !== null ? ` (${formatBytes(size, locale)})` : ''}`;
  };
  const columns: Array<DataColumn<DeletedVm>> = [
    { key: 'name', title: t('colVm'), sortValue: (v) => v.name, filterText: (v) => `${v.name} ${v.id}`, render: (v) => <span id={`deleted-vm-name-${v.id}`}>{v.name}</span> },
    { key: 'id', title: t('colVmId'), render: (v) => <code>{v.id}</code> },
    { key: 'last', title: t('colLastBackup'), sortValue: (v) => Date.parse(v.lastPoint.completedAt), render: (v) => formatDateTime(v.lastPoint.completedAt, locale) },
    { key: 'points', title: t('colPoints'), sortValue: (v) => v.pointCount, render: (v) => <span id={`deleted-vm-points-${v.id}`}>{v.pointCount}</span> },
    {
      key: 'ovf',
      title: t('colDefinition'),
      render: (v) =>
        v.ovf ? (
          <List isPlain id={`deleted-vm-ovf-${v.id}`}>
            <ListItem>{t('deletedOvfCompute', { cpus: v.ovf.cpus ?? '—', memory: v.ovf.memoryMiB !== null ? formatBytes(v.ovf.memoryMiB * 1024 * 1024, locale) : '—' })}</ListItem>
            <ListItem>
              {t('deletedOvfDisks', {
                count: v.ovf.disks.length,
                disks: v.ovf.disks.map((d) => diskText(v, d)).join(', ') || '—',
              })}
            </ListItem>
            <ListItem>{t('deletedOvfNics', { count: v.ovf.nics.length, nics: v.ovf.nics.map((n) => `${n.name}${n.mac ? ` ${n.mac}` : ''}`).join(', ') || '—' })}</ListItem>
          </List>
        ) : (
          t('restoreOvfMissing')
        ),
    },
    {
      key: 'actions',
      title: t('colActions'),
      render: (v) => (
        <Button id={`deleted-restore-${v.id}`} variant="link" isInline onClick={() => deleted.openRestore(v)} aria-label={t('restoreDeletedOf', { vm: v.name })}>
          {t('restoreButton')}
        </Button>
      ),
    },
  ];
  return (
    <>
      <ServiceErrorAlert id="deleted-vms-error" error={deleted.error} onRetry={deleted.reload} />
      <p id="deleted-vms-help">{t('deletedVmsHelp')}</p>
      <DataTable
        id="deleted-vms-table"
        ariaLabel={t('tabDeletedVms')}
        columns={columns}
        rows={deleted.vms ?? []}
        rowKey={(v) => v.id}
        rowId={(v) => `deleted-vm-row-${v.id}`}
        emptyText={deleted.vms ? t('noDeletedVms') : t('loading')}
        initialSort={{ key: 'name', direction: 'asc' }}
      />
    </>
  );
}
