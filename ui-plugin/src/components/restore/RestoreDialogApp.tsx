// The Restore… dialog page's layout (data, form, plan and start: hooks/useRestoreDialog.ts).
import { EmptyState, FormGroup, FormSelect, FormSelectOption, Grid, GridItem, PageSection, Spinner, Stack, StackItem, Title } from '@patternfly/react-core';
import { useTexts } from '../../context/appContext';
import { useRestoreDialog } from '../../hooks/useRestoreDialog';
import { formatBytes, formatDateTime } from '../../logic/format';
import { pointTypeKey } from '../../logic/jobText';
import { PointMethodLabel } from '../common/Labels';
import { ActionButton } from '../common/ActionButton';
import { LiveStatusAlert, ServiceErrorAlert } from '../common/StatusAlerts';
import { RestoreDisksTable } from './RestoreDisksTable';
import { RestoreOptions } from './RestoreOptions';
import { RestoreProblems } from './RestoreProblems';
import { RestoreProgress } from './RestoreProgress';
import { VmDefinition } from './VmDefinition';

/**
 * The Restore… dialog (a WebAdmin dialog iframe): a point of the VM, where and how to restore
 * it, its disks. Every change asks the service for the plan again (debounced); its problems
 * show above Restore, errors block it, and so does a permit the user lacks (said above Restore
 * and in its tooltip). Restore starts the job, whose progress shows here; the host page's
 * notifier toasts its end (the dialog may be closed by then). `deleted`: a VM the engine no
 * longer has (the Deleted VMs view), offered back under its original ids.
 */
export function RestoreDialogApp({ vmId, vmName, pointId: wantedPoint, deleted = false }: { vmId: string | null; vmName: string; pointId: string | null; deleted?: boolean }) {
  const { t, locale } = useTexts();
  const d = useRestoreDialog(vmId, vmName, wantedPoint, deleted);
  const { form, dispatch, point, plan, planned, groups, locked, job } = d;

  if (!vmId) return <EmptyState id="restore-no-vm" titleText={t('vmTabNoVm')} headingLevel="h3" />;
  return (
    <PageSection id="restore-dialog" padding={{ default: 'noPadding' }}>
      <Stack hasGutter>
        <StackItem>
          <LiveStatusAlert status={d.status} />
          <ServiceErrorAlert error={d.loadError} onRetry={d.retryLoad} />
        </StackItem>
        {d.pointsLoading && !d.pointsLoaded ? <Spinner aria-label={t('loading')} /> : null}
        {d.pointsLoaded && d.points.length === 0 ? <EmptyState id="restore-no-points" titleText={t('restoreNoPoints')} headingLevel="h3" /> : null}
        {d.points.length > 0 ? (
          <StackItem>
            <FormGroup label={t('restoreChoosePoint')} fieldId="restore-point">
              <FormSelect id="restore-point" value={form.pointId ?? ''} isDisabled={locked} onChange={(_e, v) => dispatch({ type: 'point', pointId: v })}>
                {d.points.map((p) => (
                  <FormSelectOption key={p.id} value={p.id} label={t('restorePointOption', { time: formatDateTime(p.completedAt, locale), type: t(pointTypeKey(p)), stored: formatBytes(p.bytesStored, locale) })} />
                ))}
              </FormSelect>
            </FormGroup>
          </StackItem>
        ) : null}
        {form.pointId && !point && d.pointLoading ? <Spinner aria-label={t('loading')} /> : null}
        {point ? (
          <>
            <StackItem id={`restore-detail-${point.id}`}>
              <div id="restore-point-made-by">
                {t('colMethod')}: <PointMethodLabel id="restore-point-method" method={point.method} />
              </div>
              <Grid hasGutter>
                <GridItem md={7}>
                  <RestoreOptions
                    form={form}
                    dispatch={dispatch}
                    plan={plan}
                    groups={groups}
                    ovfAvailable={d.ovfAvailable}
                    disabled={locked}
                    originalName={d.originalName}
                    originalIdsReason={d.originalIdsReason}
                    attachReason={d.attachReason}
                  />
                </GridItem>
                <GridItem md={5}>
                  <VmDefinition point={point} plan={plan} fromOvf={form.fromOvf && d.ovfAvailable} />
                </GridItem>
              </Grid>
            </StackItem>
            <StackItem>
              <Title headingLevel="h3">{t('restoreDisksTitle')}</Title>
              <RestoreDisksTable point={point} form={form} dispatch={dispatch} plan={plan} plannedDisk={d.plannedDisk} groups={groups} disabled={locked} downloadReason={d.downloadReason} />
            </StackItem>
            {job ? (
              <StackItem>
                <RestoreProgress job={job} onShowVm={d.showVm} />
              </StackItem>
            ) : null}
            <StackItem>
              <RestoreProblems status={planned.status} planError={planned.error} groups={groups} plan={plan} local={d.localOnly} planOk={d.planOk} denied={job ? undefined : d.submitReason} />
            </StackItem>
            <StackItem>
              {/* blocked until the plan allows it; when a permit is missing, the reason is its tooltip */}
              <ActionButton id="restore-submit" variant="primary" action={d.submit}>
                {t('restoreAction')}
              </ActionButton>
              {d.startError ? <ServiceErrorAlert id="restore-start-error" error={d.startError} onRetry={d.submit.run} /> : null}
            </StackItem>
          </>
        ) : null}
      </Stack>
    </PageSection>
  );
}
