/** The Backup primary place: dashboard, restore points, jobs, policies, audit log, VMs, and for
 *  backup admins the deleted VMs (data from usePlace). */
import { PageSection, Stack, StackItem, Tab, Tabs, TabTitleText, Title } from '@patternfly/react-core';
import { useState } from 'react';
import { useTexts } from '../../context/appContext';
import { usePlace } from '../../hooks/usePlace';
import { JobsTable } from '../common/JobsTable';
import { PointsTable } from '../common/PointsTable';
import { LiveStatusAlert, ServiceErrorAlert } from '../common/StatusAlerts';
import { AuditTab } from './AuditTab';
import { Dashboard } from './Dashboard';
import { DeletedVmsTab } from './DeletedVmsTab';
import { PoliciesTab } from './PoliciesTab';
import { VmsTable } from './VmsTable';

export function PlaceApp() {
  const { t } = useTexts();
  const place = usePlace();
  const [tab, setTab] = useState<string | number>('dashboard');

  return (
    <PageSection id="backup-place">
      <Stack hasGutter>
        <StackItem>
          <Title headingLevel="h1">{t('pluginPlaceLabel')}</Title>
        </StackItem>
        <StackItem>
          <LiveStatusAlert status={place.status} />
          <ServiceErrorAlert error={place.error} onRetry={place.retry} />
        </StackItem>
        <StackItem>
          <Tabs id="backup-tabs" activeKey={tab} onSelect={(_e, k) => {
              setTab(k);
              if (k === 'points') place.reloadPoints();
            }} aria-label={t('pluginPlaceLabel')} mountOnEnter>
            <Tab eventKey="dashboard" id="tab-dashboard" title={<TabTitleText>{t('tabDashboard')}</TabTitleText>}>
              <Dashboard jobs={place.history.jobs} jobsLoaded={place.history.loaded} vms={place.vms} repository={place.repository} cancel={place.cancelJob} me={place.me} />
            </Tab>
            <Tab eventKey="points" id="tab-points" title={<TabTitleText>{t('tabPoints')}</TabTitleText>}>
              <PointsTable id="points-table" points={place.points ?? []} showVm onRestore={place.openRestore} vmOf={place.vmOf} />
            </Tab>
            <Tab eventKey="jobs" id="tab-jobs" title={<TabTitleText>{t('tabJobs')}</TabTitleText>}>
              <JobsTable id="jobs-table" jobs={place.history.jobs} showVm cancel={place.cancelJob} loadOlder={place.history.loadOlder} />
            </Tab>
            <Tab eventKey="policies" id="tab-policies" title={<TabTitleText>{t('tabPolicies')}</TabTitleText>}>
              <PoliciesTab vms={place.vms ?? []} refresh={place.refresh} onChanged={place.reloadVms} me={place.me} />
            </Tab>
            <Tab eventKey="audit" id="tab-audit" title={<TabTitleText>{t('tabAudit')}</TabTitleText>}>
              <AuditTab vms={place.vms ?? []} refresh={place.refresh} me={place.me} />
            </Tab>
            <Tab eventKey="vms" id="tab-vms" title={<TabTitleText>{t('tabVms')}</TabTitleText>}>
              <VmsTable vms={place.vms ?? []} />
            </Tab>
            {place.me?.backupAdmin ? (
              <Tab eventKey="deleted" id="tab-deleted" title={<TabTitleText>{t('tabDeletedVms')}</TabTitleText>}>
                <DeletedVmsTab refresh={place.refresh} />
              </Tab>
            ) : null}
          </Tabs>
        </StackItem>
      </Stack>
    </PageSection>
  );
}
