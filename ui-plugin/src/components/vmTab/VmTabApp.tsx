// The VMs' Backups tab page: last job, chain health, points, jobs (data and actions: hooks/useVmBackups.ts).
import { Alert, Card, CardBody, CardTitle, EmptyState, EmptyStateBody, Flex, FlexItem, PageSection, Spinner, Stack, StackItem, Title } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { useTexts } from '../../context/appContext';
import { useVmBackups } from '../../hooks/useVmBackups';
import { BackupNowButton } from '../common/BackupNowButton';
import { JobProgress } from '../common/JobProgress';
import { JobsTable } from '../common/JobsTable';
import { ChainLabel, useReasonText } from '../common/Labels';
import { PointsTable } from '../common/PointsTable';
import { pointMethodKey } from '../../logic/backupChoices';
import { LiveStatusAlert, ServiceErrorAlert } from '../common/StatusAlerts';

/** The VM's Backups tab: last job with live progress, chain health per disk, points, jobs. */
export function VmTabApp({ vmId, vmName }: { vmId: string | null; vmName: string }) {
  const { t } = useTexts();
  if (!vmId) {
    return (
      <PageSection>
        <EmptyState id="vm-tab-no-vm" titleText={t('vmTabNoVm')} headingLevel="h2" />
      </PageSection>
    );
  }
  return <VmBackups vmId={vmId} vmName={vmName} />;
}

function VmBackups({ vmId, vmName }: { vmId: string; vmName: string }) {
  const { t } = useTexts();
  const reason = useReasonText();
  const { status, vm, notVisible, points, pointsLoading, history, lastJob, error, retry, cancelJob, openRestore } = useVmBackups(vmId);

  return (
    <PageSection id={`vm-backups-${vmId}`}>
      <Stack hasGutter>
        <StackItem>
          <Flex justifyContent={{ default: 'justifyContentSpaceBetween' }}>
            <FlexItem>
              <Title headingLevel="h2">{vm?.name ?? vmName}</Title>
            </FlexItem>
            <FlexItem>{notVisible ? null : <BackupNowButton vm={{ id: vmId, name: vm?.name ?? vmName, access: vm?.access ?? null }} variant="primary" />}</FlexItem>
          </Flex>
        </StackItem>
        <StackItem>
          <LiveStatusAlert status={status} />
          <ServiceErrorAlert error={error} onRetry={retry} />
          {notVisible ? <Alert id="vm-not-visible" variant="info" isInline title={t('vmNotVisible')} /> : null}
        </StackItem>
        {lastJob ? (
          <StackItem>
            <Card id="vm-last-job" isCompact>
              <CardTitle>{t('vmTabLastJob')}</CardTitle>
              <CardBody>
                <JobProgress job={lastJob} cancel={cancelJob} />
                {lastJob.error ? <Alert variant="danger" isInline isPlain title={lastJob.error.message} /> : null}
              </CardBody>
            </Card>
          </StackItem>
        ) : null}
        {vm ? (
          <StackItem>
            <Card id="vm-chain" isCompact>
              <CardTitle>{t('vmTabChainTitle')}</CardTitle>
              <CardBody>
                <div id="vm-next-method" data-method={vm.nextMethod}>
                  {t('nextMethodOf', { method: t(pointMethodKey(vm.nextMethod)) })}
                </div>
                <Table aria-label={t('vmTabChainTitle')} variant="compact">
                  <Thead>
                    <Tr>
                      <Th>{t('colDisk')}</Th>
                      <Th>{t('colChain')}</Th>
                      <Th>{t('colReason')}</Th>
                    </Tr>
                  </Thead>
                  <Tbody>
                    {vm.chain.map((d) => (
                      <Tr key={d.diskId} id={`chain-${d.diskId}`}>
                        <Td dataLabel={t('colDisk')}>{d.alias}</Td>
                        <Td dataLabel={t('colChain')}>
                          <ChainLabel disk={d} />
                        </Td>
                        <Td dataLabel={t('colReason')} id={`chain-reason-${d.diskId}`} data-reason={d.reason ?? ''}>
                          {d.excluded ? t('reasonExcluded') : reason(d.reason)}
                        </Td>
                      </Tr>
                    ))}
                  </Tbody>
                </Table>
              </CardBody>
            </Card>
          </StackItem>
        ) : null}
        <StackItem>
          <Card id="vm-points" isCompact>
            <CardTitle>{t('vmTabPointsTitle')}</CardTitle>
            <CardBody>{points ? <PointsTable id="vm-points-table" points={points} showVm={false} onRestore={openRestore} vmOf={(id) => (vm && vm.id === id ? vm : undefined)} /> : pointsLoading ? <Spinner size="md" aria-label={t('loading')} /> : <EmptyStateBody>{t('noPoints')}</EmptyStateBody>}</CardBody>
          </Card>
        </StackItem>
        <StackItem>
          <Card id="vm-jobs" isCompact>
            <CardTitle>{t('vmTabJobsTitle')}</CardTitle>
            <CardBody>
              <JobsTable id="vm-jobs-table" jobs={history.jobs} showVm={false} cancel={cancelJob} loadOlder={history.loadOlder} />
            </CardBody>
          </Card>
        </StackItem>
      </Stack>
    </PageSection>
  );
}
