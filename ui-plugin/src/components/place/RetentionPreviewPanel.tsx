// The policy editor's retention preview panel (asked through hooks/useRetentionPreview.ts, worded by logic/retentionPreview.ts).
import { Alert, ExpandableSection } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import type { RetentionPreviewRequest } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { useRetentionPreview } from '../../hooks/useRetentionPreview';
import { errorReason } from '../../logic/errorText';
import { formatDateTime } from '../../logic/format';
import { pointFate, previewSummary, vmCounts } from '../../logic/retentionPreview';
import { ActionButton } from '../common/ActionButton';

interface Props {
  /** The form's selection, rules and zone now. */
  request: () => RetentionPreviewRequest;
  /** Bumped by the dialog on every change: a preview of older values is marked stale. */
  formVersion: number;
}

/**
 * "Preview retention": what the rules in the form would do to the selected VMs' points if a run
 * applied them now (the service's dry-run prune: same code, same zone). Asked on demand, never
 * while typing: it reads every manifest of the selected VMs.
 */
export function RetentionPreviewPanel({ request, formVersion }: Props) {
  const { t, locale } = useTexts();
  const { preview: p, stale, error, ask } = useRetentionPreview(request, formVersion);
  return (
    <div id="retention-preview">
      <ActionButton id="retention-preview-button" variant="secondary" action={ask}>
        {t('retentionPreviewButton')}
      </ActionButton>
      {error ? <Alert id="retention-preview-error" variant="danger" isInline isPlain title={t('retentionPreviewFailed', { reason: errorReason(error) })} /> : null}
      {p ? (
        <Alert
          id="retention-preview-result"
          variant={p.totals.remove > 0 ? 'warning' : 'info'}
          isInline
          title={t('retentionPreviewTitle')}
          data-stale={stale ? 'true' : 'false'}
        >
          <p id="retention-preview-summary" aria-live="polite">
            {previewSummary(p, t)}
          </p>
          {stale ? <p id="retention-preview-stale">{t('retentionPreviewStale')}</p> : null}
          <p>{t('retentionPreviewNote')}</p>
          {p.vms.map((vm) => {
            const c = vmCounts(vm.points);
            return (
              <ExpandableSection key={vm.vmId} id={`retention-preview-vm-${vm.vmId}`} toggleText={t('retentionPreviewVm', { vm: vm.vmName, ...c })} isIndented>
                {vm.points.length === 0 ? (
                  <div>{t('retentionPreviewNoPoints')}</div>
                ) : (
                  <Table aria-label={t('retentionPreviewVm', { vm: vm.vmName, ...c })} variant="compact">
                    <Thead>
                      <Tr>
                        <Th>{t('colTime')}</Th>
                        <Th>{t('colFate')}</Th>
                      </Tr>
                    </Thead>
                    <Tbody>
                      {vm.points.map((pt) => (
                        <Tr key={pt.pointId} id={`retention-preview-point-${pt.pointId}`} data-action={pt.action}>
                          <Td dataLabel={t('colTime')}>{formatDateTime(pt.createdAt, locale)}</Td>
                          <Td dataLabel={t('colFate')}>{pointFate(pt, p, t, locale)}</Td>
                        </Tr>
                      ))}
                    </Tbody>
                  </Table>
                )}
              </ExpandableSection>
            );
          })}
        </Alert>
      ) : null}
    </div>
  );
}
