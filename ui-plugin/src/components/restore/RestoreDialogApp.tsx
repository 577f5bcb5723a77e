import { Button, EmptyState, FormGroup, FormSelect, FormSelectOption, Grid, GridItem, PageSection, Spinner, Stack, StackItem, Title } from '@patternfly/react-core';
import { useEffect, useMemo, useReducer, useState } from 'react';
import type { Job, PointSummary, RestoreProblem } from '../../../../backend/src/api/contract';
import { TOKENS } from '../../constants';
import { useLive } from '../../hooks/useLive';
import { useLoader } from '../../hooks/useLoader';
import { useRestorePlan } from '../../hooks/useRestorePlan';
import { formatBytes, formatDateTime } from '../../logic/format';
import { isActive } from '../../logic/progress';
import {
  canSubmit,
  formReducer,
  groupProblems,
  initialForm,
  initialPointId,
  localProblems,
  plannedDomains,
  pointsNewestFirst,
  refusedProblems,
  restoreBody,
} from '../../logic/restoreForm';
import { ServiceError } from '../../services/serviceError';
import { useApp } from '../AppContext';
import { LiveStatusAlert, ServiceErrorAlert } from '../common/StatusAlerts';
import { RestoreDisksTable } from './RestoreDisksTable';
import { RestoreOptions } from './RestoreOptions';
import { RestoreProblems } from './RestoreProblems';
import { RestoreProgress } from './RestoreProgress';
import { VmDefinition } from './VmDefinition';

/**
 * The Restore… dialog (a WebAdmin dialog iframe): a point of the VM, where and how to restore
 * it, its disks. Every change asks the service for the plan again (debounced); its problems
 * show above Restore, errors block it. Restore starts the job, whose progress shows here; the
 * host page's notifier toasts its end (the dialog may be closed by then).
 */
export function RestoreDialogApp({ vmId, vmName, pointId: wantedPoint }: { vmId: string | null; vmName: string; pointId: string | null }) {
  const ctx = useApp();
  const { client, t, locale, bridge } = ctx;
  const live = useLive();
  const points = useLoader(() => (vmId ? client.vmPointListAll(vmId) : Promise.resolve([])), [vmId]);
  const list = useMemo(() => pointsNewestFirst(points.data ?? []), [points.data]);
  const [form, dispatch] = useReducer(formReducer, vmName, (name) => initialForm(name));

  // the point: the one asked for, else the newest; the VM's name from the points when the URL had none
  useEffect(() => {
    if (form.pointId || list.length === 0) return;
    const id = initialPointId(list, wantedPoint);
    if (id) dispatch({ type: 'point', pointId: id });
    if (!vmName && list[0]) dispatch({ type: 'vmName', value: `${list[0].vmName}-restored` });
  }, [list, form.pointId, wantedPoint, vmName]);

  const detail = useLoader(() => (form.pointId ? client.pointGet(form.pointId) : Promise.resolve(null)), [form.pointId]);
  const point = detail.data && detail.data.id === form.pointId ? detail.data : null;
  const devices = useMemo(() => point?.disks.map((d) => d.device) ?? [], [point]);
  const ovfAvailable = point?.ovfAvailable ?? true;
  const body = useMemo(() => (point ? restoreBody(form, devices, ovfAvailable) : null), [form, devices, ovfAvailable, point]);
  const local = useMemo(() => (point ? localProblems(form, devices, t, ovfAvailable) : []), [form, devices, t, ovfAvailable, point]);
  const planned = useRestorePlan(point ? form.pointId : null, body, !point ? 'waiting' : local.length > 0 ? 'invalid' : null);
  const plan = planned.plan && planned.plan.pointId === form.pointId ? planned.plan : null;

  // the restore started from here
  const [jobId, setJobId] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [refused, setRefused] = useState<{ key: string; problems: RestoreProblem[]; plan: typeof plan } | null>(null);
  const [startError, setStartError] = useState<unknown>(null);
  const job: Job | null = jobId ? (live.jobs.byId[jobId] ?? null) : null;
  const jobActive = job !== null && isActive(job);
  const bodyKey = body ? JSON.stringify([form.pointId, body]) : '';

  // the socket was down meanwhile: the job's state from the REST API
  useEffect(() => {
    if (!jobId) return;
    client.jobGet(jobId).then((j) => live.addJobs([j]), () => undefined);
  }, [jobId, live.onlineVersion]);
  // after a restore the engine has changed (the name is taken now): plan again
  const jobState = job?.state;
  useEffect(() => {
    if (jobState && !isActive({ state: jobState })) planned.refresh();
  }, [jobState]);

  // a refusal stands for its body until a newer plan arrives
  const refusedNow = refused && refused.key === bodyKey && refused.plan === plan ? refused.problems : null;
  const problems: RestoreProblem[] = local.length > 0 ? local : (refusedNow ?? (plan?.problems ?? []));
  const groups = groupProblems(problems, { devices, domainOf: plannedDomains(plan) });
  const planOk = local.length === 0 && refusedNow === null && (plan?.ok ?? false);
  const submittable = canSubmit({ planStatus: planned.status, planCurrent: planned.current, planOk, submitting, jobActive });
  const locked = submitting || jobActive;

  const submit = (): void => {
    if (!form.pointId || !body || !submittable) return;
    const key = bodyKey;
    setSubmitting(true);
    setStartError(null);
    client.restoreStart(form.pointId, body).then(
      (res) => {
        setSubmitting(false);
        live.addJobs([res.job]);
        setJobId(res.job.id);
        bridge.toast('info', t('toastRestoreStarted', { vm: res.job.vmName }));
      },
      (err: unknown) => {
        setSubmitting(false);
        const problemsOf = err instanceof ServiceError && err.code === 'RESTORE_REFUSED' ? refusedProblems(err.details) : [];
        if (problemsOf.length > 0) {
          setRefused({ key, problems: problemsOf, plan });
          planned.refresh();
        } else setStartError(err);
      },
    );
  };

  if (!vmId) return <EmptyState id="restore-no-vm" titleText={t('vmTabNoVm')} headingLevel="h3" />;
  return (
    <PageSection id="restore-dialog" padding={{ default: 'noPadding' }}>
      <Stack hasGutter>
        <StackItem>
          <LiveStatusAlert status={live.status} />
          <ServiceErrorAlert error={points.error || detail.error} onRetry={() => (points.error ? points.reload() : detail.reload())} />
        </StackItem>
        {points.loading && !points.data ? <Spinner aria-label={t('loading')} /> : null}
        {points.data && list.length === 0 ? <EmptyState id="restore-no-points" titleText={t('restoreNoPoints')} headingLevel="h3" /> : null}
        {list.length > 0 ? (
          <StackItem>
            <FormGroup label={t('restoreChoosePoint')} fieldId="restore-point">
              <FormSelect id="restore-point" value={form.pointId ?? ''} isDisabled={locked} onChange={(_e, v) => dispatch({ type: 'point', pointId: v })}>
                {list.map((p) => (
                  <FormSelectOption key={p.id} value={p.id} label={t('restorePointOption', { time: formatDateTime(p.completedAt, locale), type: pointType(p, t), stored: formatBytes(p.bytesStored, locale) })} />
                ))}
              </FormSelect>
            </FormGroup>
          </StackItem>
        ) : null}
        {form.pointId && !point && detail.loading ? <Spinner aria-label={t('loading')} /> : null}
        {point ? (
          <>
            <StackItem id={`restore-detail-${point.id}`}>
              <Grid hasGutter>
                <GridItem md={7}>
                  <RestoreOptions form={form} dispatch={dispatch} plan={plan} groups={groups} ovfAvailable={ovfAvailable} disabled={locked} />
                </GridItem>
                <GridItem md={5}>
                  <VmDefinition point={point} plan={plan} fromOvf={form.fromOvf && ovfAvailable} />
                </GridItem>
              </Grid>
            </StackItem>
            <StackItem>
              <Title headingLevel="h3">{t('restoreDisksTitle')}</Title>
              <RestoreDisksTable point={point} form={form} dispatch={dispatch} plan={plan} groups={groups} disabled={locked} />
            </StackItem>
            {job ? (
              <StackItem>
                <RestoreProgress job={job} onShowVm={(name) => bridge.showVm(name, TOKENS.restoreDialog)} />
              </StackItem>
            ) : null}
            <StackItem>
              <RestoreProblems status={planned.status} planError={planned.error} groups={groups} plan={plan} local={local.length > 0} planOk={planOk} />
            </StackItem>
            <StackItem>
              <Button id="restore-submit" variant="primary" isAriaDisabled={!submittable} isLoading={submitting} onClick={submit}>
                {t('restoreAction')}
              </Button>
              {startError ? <ServiceErrorAlert id="restore-start-error" error={startError} onRetry={submit} /> : null}
            </StackItem>
          </>
        ) : null}
      </Stack>
    </PageSection>
  );
}

function pointType(p: PointSummary, t: ReturnType<typeof useApp>['t']): string {
  const modes = new Set(p.disks.map((d) => d.mode));
  return modes.size > 1 ? t('typeMixed') : modes.has('full') ? t('typeFull') : t('typeIncremental');
}
