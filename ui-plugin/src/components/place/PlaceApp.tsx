import { PageSection, Stack, StackItem, Tab, Tabs, TabTitleText, Title } from '@patternfly/react-core';
import { useState } from 'react';
import type { PointSummary } from '../../../../backend/src/api/contract';
import { useJobHistory } from '../../hooks/useJobHistory';
import { useLive } from '../../hooks/useLive';
import { useLoader } from '../../hooks/useLoader';
import { useApp } from '../AppContext';
import { cancelJob } from '../common/cancelJob';
import { JobsTable } from '../common/JobsTable';
import { PointsTable } from '../common/PointsTable';
import { LiveStatusAlert, ServiceErrorAlert } from '../common/StatusAlerts';
import { AuditTab } from './AuditTab';
import { Dashboard } from './Dashboard';
import { PoliciesTab } from './PoliciesTab';
import { VmsTable } from './VmsTable';

/** The Backup primary place: dashboard, restore points, jobs, policies, audit log, VMs. */
export function PlaceApp() {
  const ctx = useApp();
  const { client, t } = ctx;
  const live = useLive();
  const [tab, setTab] = useState<string | number>('dashboard');
  const refresh = [live.onlineVersion, live.jobs.pointsVersion, live.finishedVersion];
  const vms = useLoader(() => client.vmList(), refresh);
  const repository = useLoader(() => client.repositoryGet(), refresh);
  const points = useLoader(async (): Promise<PointSummary[]> => {
    const list = vms.data?.vms.filter((v) => v.pointCount > 0) ?? [];
    const all = await Promise.all(list.map((v) => client.vmPointListAll(v.id)));
    return all.flat();
  }, [vms.data]);
  const history = useJobHistory(live);
  const onCancel = cancelJob.bind(null, ctx);
  const error = vms.error || repository.error || history.error || points.error;
  const retry = (): void => {
    vms.reload();
    repository.reload();
    history.reload();
  };

  return (
    <PageSection id="backup-place">
      <Stack hasGutter>
        <StackItem>
          <Title headingLevel="h1">{t('pluginPlaceLabel')}</Title>
        </StackItem>
        <StackItem>
          <LiveStatusAlert status={live.status} />
          <ServiceErrorAlert error={error} onRetry={retry} />
        </StackItem>
        <StackItem>
          <Tabs id="backup-tabs" activeKey={tab} onSelect={(_e, k) => {
              setTab(k);
              // points change without an event of their own (a policy's retention locks or prunes them)
              if (k === 'points') points.reload();
            }} aria-label={t('pluginPlaceLabel')} mountOnEnter>
            <Tab eventKey="dashboard" id="tab-dashboard" title={<TabTitleText>{t('tabDashboard')}</TabTitleText>}>
              <Dashboard jobs={history.jobs} jobsLoaded={history.loaded} vms={vms.data?.vms ?? null} repository={repository.data} onCancel={onCancel} />
            </Tab>
            <Tab eventKey="points" id="tab-points" title={<TabTitleText>{t('tabPoints')}</TabTitleText>}>
              <PointsTable id="points-table" points={points.data ?? []} showVm onRestore={(p) => ctx.bridge.openRestore({ id: p.vmId, name: p.vmName }, p.id, t)} />
            </Tab>
            <Tab eventKey="jobs" id="tab-jobs" title={<TabTitleText>{t('tabJobs')}</TabTitleText>}>
              <JobsTable id="jobs-table" jobs={history.jobs} showVm onCancel={onCancel} onLoadOlder={history.loadOlder} />
            </Tab>
            <Tab eventKey="policies" id="tab-policies" title={<TabTitleText>{t('tabPolicies')}</TabTitleText>}>
              <PoliciesTab vms={vms.data?.vms ?? []} refresh={refresh} onChanged={vms.reload} />
            </Tab>
            <Tab eventKey="audit" id="tab-audit" title={<TabTitleText>{t('tabAudit')}</TabTitleText>}>
              <AuditTab vms={vms.data?.vms ?? []} refresh={refresh} />
            </Tab>
            <Tab eventKey="vms" id="tab-vms" title={<TabTitleText>{t('tabVms')}</TabTitleText>}>
              <VmsTable vms={vms.data?.vms ?? []} />
            </Tab>
          </Tabs>
        </StackItem>
      </Stack>
    </PageSection>
  );
}
