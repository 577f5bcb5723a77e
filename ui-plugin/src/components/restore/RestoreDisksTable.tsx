// The Restore… dialog's disks: include, name, storage domain, their problems, and image downloads.
import { Alert, Checkbox, Flex, FlexItem, FormSelect, FormSelectOption, TextInput } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import type { Dispatch } from 'react';
import type { PointDetail, RestorePlanView } from '../../../../backend/src/api/contract';
import { useDiskDownload } from '../../hooks/useDiskDownload';
import type { PlannedDisk } from '../../hooks/useRestoreDialog';
import { errorReason } from '../../logic/errorText';
import { formatBytes, formatDateTime } from '../../logic/format';
import { diskChoice, type FormAction, type ProblemGroups, type RestoreForm } from '../../logic/restoreForm';
import { useTexts } from '../../context/appContext';
import { ActionButton } from '../common/ActionButton';
import { FieldProblems } from './FieldProblems';

interface Props {
  point: PointDetail;
  form: RestoreForm;
  dispatch: Dispatch<FormAction>;
  plan: RestorePlanView | null;
  /** What the latest plan that had the disk said of it (a disk left out is not in the plan). */
  plannedDisk: (device: string) => PlannedDisk | undefined;
  groups: ProblemGroups;
  disabled: boolean;
  /** Why the user may not download the disks (backup_disk + edit_disk_properties); undefined: they may. */
  downloadReason: string | undefined;
}

/**
 * The point's disks: include, size, the restored disk's name (the plan's default shown until
 * one is typed) and target storage domain (with free space), the problems of each disk, and a
 * download of its image.
 */
export function RestoreDisksTable({ point, form, dispatch, plan, plannedDisk, groups, disabled, downloadReason }: Props) {
  const { t, locale } = useTexts();
  const domains = plan?.targets.storageDomains ?? [];

  return (
    <Table id="restore-disks" aria-label={t('restoreDisksTitle')} variant="compact">
      <Thead>
        <Tr>
          <Th modifier="fitContent">{t('colInclude')}</Th>
          <Th width={20} modifier="wrap">
            {t('colDisk')}
          </Th>
          <Th width={15} modifier="wrap">
            {t('virtualSize')}
          </Th>
          <Th width={20} modifier="wrap">
            {t('colRestoredName')}
          </Th>
          <Th width={30} modifier="wrap">
            {t('colStorageDomain')}
          </Th>
          <Th modifier="fitContent">{t('colDownload')}</Th>
        </Tr>
      </Thead>
      <Tbody>
        {point.disks.map((disk) => {
          const label = disk.alias ?? disk.device;
          const c = diskChoice(form, disk.device);
          const p = plannedDisk(disk.device);
          const problems = groups.byDisk[disk.device] ?? [];
          const sdValue = c.storageDomainId ?? p?.storageDomainId ?? '';
          const sdProblem = problems.some((x) => x.severity === 'error' && x.code.startsWith('STORAGE_DOMAIN'));
          const nameProblem = problems.some((x) => x.code === 'DISK_NAME_INVALID');
          return (
            <Tr key={disk.device} id={`restore-disk-${disk.device}`} data-included={c.include}>
              <Td dataLabel={t('colInclude')}>
                <Checkbox
                  id={`restore-disk-include-${disk.device}`}
                  aria-label={t('restoreIncludeDisk', { disk: label })}
                  isChecked={c.include}
                  isDisabled={disabled}
                  onChange={(_e, v) => dispatch({ type: 'disk', device: disk.device, change: { include: v } })}
                />
              </Td>
              <Td dataLabel={t('colDisk')}>
                <div>{label}</div>
                <small>{disk.device}</small>
              </Td>
              <Td dataLabel={t('virtualSize')}>
                <div>{p ? t('restoreDiskSize', { size: formatBytes(disk.virtualSize, locale), data: formatBytes(p.dataBytes, locale) }) : formatBytes(disk.virtualSize, locale)}</div>
                {p ? <small id={`restore-disk-format-${disk.device}`}>{t('restoreDiskPlanned', { format: p.format === 'cow' ? 'qcow2' : 'raw', allocation: t(p.sparse ? 'allocationSparse' : 'allocationPreallocated') })}</small> : null}
              </Td>
              <Td dataLabel={t('colRestoredName')}>
                <TextInput
                  id={`restore-disk-name-${disk.device}`}
                  aria-label={t('restoreDiskNameOf', { disk: label })}
                  value={c.name}
                  placeholder={p?.name ?? ''}
                  isDisabled={disabled || !c.include}
                  validated={nameProblem ? 'error' : 'default'}
                  onChange={(_e, v) => dispatch({ type: 'disk', device: disk.device, change: { name: v } })}
                />
              </Td>
              <Td dataLabel={t('colStorageDomain')}>
                <FormSelect
                  id={`restore-disk-sd-${disk.device}`}
                  aria-label={t('restoreDiskSdOf', { disk: label })}
                  value={sdValue}
                  isDisabled={disabled || !c.include || domains.length === 0}
                  validated={sdProblem ? 'error' : 'default'}
                  onChange={(_e, v) => dispatch({ type: 'disk', device: disk.device, change: { storageDomainId: v || null } })}
                >
                  {/* no plan yet: loading; a plan offering no domain: none the user may create disks on */}
                  {domains.length === 0 || !sdValue ? <FormSelectOption value="" label={!plan ? t('loading') : '—'} isPlaceholder /> : null}
                  {domains.map((sd) => (
                    <FormSelectOption
                      key={sd.id}
                      value={sd.id}
                      isDisabled={!sd.usable}
                      label={
                        !sd.usable
                          ? t('restoreSdOptionUnusable', { name: sd.name })
                          : sd.availableBytes === null
                            ? t('restoreSdOptionUnknown', { name: sd.name })
                            : t('restoreSdOption', { name: sd.name, free: formatBytes(sd.availableBytes, locale) })
                      }
                    />
                  ))}
                </FormSelect>
                <FieldProblems problems={problems} id={`restore-disk-problems-${disk.device}`} />
              </Td>
              <Td dataLabel={t('colDownload')}>
                <DiskDownload pointId={point.id} device={disk.device} label={label} deniedReason={downloadReason} />
              </Td>
            </Tr>
          );
        })}
      </Tbody>
    </Table>
  );
}

/** raw / qcow2 (useDiskDownload asks for a ticket and opens its link), and the link shown, in case. */
function DiskDownload({ pointId, device, label, deniedReason }: { pointId: string; device: string; label: string; deniedReason: string | undefined }) {
  const { t, locale } = useTexts();
  const { ticket: tk, error, action } = useDiskDownload(pointId, device, deniedReason);
  return (
    <div id={`restore-download-${device}`}>
      <Flex spaceItems={{ default: 'spaceItemsSm' }} flexWrap={{ default: 'nowrap' }}>
        {(['raw', 'qcow2'] as const).map((f) => (
          <FlexItem key={f}>
            <ActionButton id={`restore-download-${device}-${f}`} variant="link" isInline action={action(f)} aria-label={t('restoreDownloadOf', { disk: label, format: f })}>
              {t(f === 'raw' ? 'restoreDownloadRaw' : 'restoreDownloadQcow2')}
            </ActionButton>
          </FlexItem>
        ))}
      </Flex>
      {tk ? (
        <small>
          <a
            id={`restore-download-link-${device}`}
            href={tk.href}
            download={tk.ticket.fileName}
            rel="noopener"
            title={t('restoreDownloadReady', { file: tk.ticket.fileName, size: formatBytes(tk.ticket.sizeBytes, locale), time: formatDateTime(tk.ticket.expiresAt, locale) })}
          >
            {tk.ticket.fileName}
          </a>
        </small>
      ) : null}
      {error ? <Alert id={`restore-download-error-${device}`} variant="danger" isInline isPlain title={t('restoreDownloadFailed', { disk: label, reason: errorReason(error) })} /> : null}
    </div>
  );
}
