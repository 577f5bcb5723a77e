/**
 * The place's dashboard: running jobs with live progress, the last 24 hours, the repository's
 * usage, the VMs whose next backup is full, VMs in no policy, damaged points. Renders what
 * usePlace loaded; the sums and choices are logic/dashboard.ts's.
 */
import {
  Alert,
  Card,
  CardBody,
  CardTitle,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  Gallery,
  List,
  ListItem,
  Progress,
  ProgressMeasureLocation,
  Spinner,
  Stack,
  StackItem,
} from '@patternfly/react-core';
import type { Job, RepositoryStatus, VmSummary } from '../../../../backend/src/api/contract';
import { summarizeRecent, repositoryFill, vmsNextFull } from '../../logic/dashboard';
import { vmsInNoPolicy } from '../../logic/policyForm';
import { formatBytes, formatRatio } from '../../logic/format';
import { isActive } from '../../logic/progress';
import { useTexts } from '../../context/appContext';
import type { ActionState } from '../../hooks/useAction';
import { useVerifyRepository } from '../../hooks/useJobActions';
import type { Caller } from '../../logic/access';
import { ActionButton } from '../common/ActionButton';
import { JobProgress } from '../common/JobProgress';
import { useReasonText } from '../common/Labels';

interface Props {
  jobs: Job[];
  jobsLoaded: boolean;
  vms: VmSummary[] | null;
  repository: RepositoryStatus | null;
  cancel: (job: Job) => ActionState;
  /** Who asks (the repository verify is a backup admin's); null until known. */
  me: Caller;
}

export function Dashboard({ jobs, jobsLoaded, vms, repository, cancel, me }: Props) {
  const { t, locale } = useTexts();
  const reason = useReasonText();
  const running = jobs.filter(isActive);
  const day = summarizeRecent(jobs, Date.now());
  const nextFull = vms ? vmsNextFull(vms) : [];
  const noPolicy = vms ? vmsInNoPolicy(vms) : [];
  const fill = repository ? repositoryFill(repository.usedBytes, repository.freeBytes) : null;
  return (
    <Stack hasGutter id="dashboard">
      <StackItem>
        <Card id="running-jobs" isCompact>
          <CardTitle>{t('runningJobsTitle')}</CardTitle>
          <CardBody>
            {running.length === 0 ? (
              <span id="running-jobs-empty">{t('runningJobsEmpty')}</span>
            ) : (
              <Stack hasGutter>
                {running.map((j) => (
                  <StackItem key={j.id}>
                    <JobProgress job={j} cancel={cancel} />
                  </StackItem>
                ))}
              </Stack>
            )}
          </CardBody>
        </Card>
      </StackItem>
      <StackItem>
        <Gallery hasGutter minWidths={{ default: '280px' }}>
          <Card id="summary-24h" isCompact>
            <CardTitle>{t('last24hTitle')}</CardTitle>
            <CardBody>
              {!jobsLoaded ? (
                <Spinner size="md" aria-label={t('loading')} />
              ) : (
              <>
              <DescriptionList isHorizontal isCompact>
                <DescriptionListGroup>
                  <DescriptionListTerm>{t('succeeded')}</DescriptionListTerm>
                  <DescriptionListDescription id="summary-succeeded">{day.succeeded}</DescriptionListDescription>
                </DescriptionListGroup>
                <DescriptionListGroup>
                  <DescriptionListTerm>{t('failed')}</DescriptionListTerm>
                  <DescriptionListDescription id="summary-failed">{day.failed}</DescriptionListDescription>
                </DescriptionListGroup>
                <DescriptionListGroup>
                  <DescriptionListTerm>{t('cancelled')}</DescriptionListTerm>
                  <DescriptionListDescription id="summary-cancelled">{day.cancelled}</DescriptionListDescription>
                </DescriptionListGroup>
              </DescriptionList>
              <small>{t('storedLast24h', { bytes: formatBytes(day.bytesStored, locale) })}</small>
              </>
              )}
            </CardBody>
          </Card>
          <Card id="repository-usage" isCompact>
            <CardTitle>{t('repositoryTitle')}</CardTitle>
            <CardBody>
              {!repository ? (
                <Spinner size="md" aria-label={t('loading')} />
              ) : (
                <>
                  {fill !== null ? (
                    <Progress value={Math.round(fill * 100)} title={`${t('repoUsed')} ${formatBytes(repository.usedBytes, locale)} · ${t('repoFree')} ${formatBytes(repository.freeBytes, locale)}`} measureLocation={ProgressMeasureLocation.outside} aria-label={t('repositoryTitle')} size="sm" />
                  ) : null}
                  <DescriptionList isHorizontal isCompact>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('repoUsed')}</DescriptionListTerm>
                      <DescriptionListDescription id="repo-used">{formatBytes(repository.usedBytes, locale)}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('repoLogical')}</DescriptionListTerm>
                      <DescriptionListDescription>{formatBytes(repository.logicalBytes, locale)}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('repoDedup')}</DescriptionListTerm>
                      <DescriptionListDescription id="repo-dedup">{formatRatio(repository.dedupRatio, locale)}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('repoCompression')}</DescriptionListTerm>
                      <DescriptionListDescription id="repo-compression">{formatRatio(repository.compressionRatio, locale)}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('repoSavings')}</DescriptionListTerm>
                      <DescriptionListDescription id="repo-savings">{repository.usedBytes > 0 ? formatRatio(repository.logicalBytes / repository.usedBytes, locale) : '—'}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('repoPoints')}</DescriptionListTerm>
                      <DescriptionListDescription id="repo-points">{repository.pointCount}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('repoVms')}</DescriptionListTerm>
                      <DescriptionListDescription>{repository.vmCount}</DescriptionListDescription>
                    </DescriptionListGroup>
                  </DescriptionList>
                  <RepositoryVerifyButton me={me} />
                </>
              )}
            </CardBody>
          </Card>
          <Card id="next-full" isCompact>
            <CardTitle>{t('nextFullTitle')}</CardTitle>
            <CardBody>
              {!vms ? (
                <Spinner size="md" aria-label={t('loading')} />
              ) : nextFull.length === 0 ? (
                t('nextFullEmpty')
              ) : (
                <List isPlain>
                  {nextFull.map((n) => (
                    <ListItem key={n.vm.id} id={`next-full-${n.vm.id}`}>
                      <strong>{n.vm.name}</strong>: {n.vm.pointCount === 0 ? t('neverBackedUp') : n.disks.map((d) => `${d.alias} (${reason(d.reason)})`).join(', ')}
                    </ListItem>
                  ))}
                </List>
              )}
            </CardBody>
          </Card>
          <Card id="no-policy-vms" isCompact data-count={vms ? noPolicy.length : undefined}>
            <CardTitle>{t('noPolicyTitle')}</CardTitle>
            <CardBody>
              {!vms ? (
                <Spinner size="md" aria-label={t('loading')} />
              ) : noPolicy.length === 0 ? (
                <span id="no-policy-empty">{t('noPolicyEmpty')}</span>
              ) : (
                <>
                  <Alert id="no-policy-count" variant="warning" isInline isPlain title={t('noPolicyCount', { count: noPolicy.length })} />
                  <List isPlain aria-label={t('noPolicyTitle')}>
                    {noPolicy.map((v) => (
                      <ListItem key={v.id} id={`no-policy-vm-${v.id}`}>
                        {v.name}
                      </ListItem>
                    ))}
                  </List>
                </>
              )}
            </CardBody>
          </Card>
          {vms && vms.some((v) => (v.damagedPoints ?? 0) > 0) ? (
            <Card id="damaged-points" isCompact>
              <CardTitle>{t('damagedPointsTitle')}</CardTitle>
              <CardBody>
                <Alert variant="danger" isInline isPlain title={t('pointDamagedHelp')} />
                <List isPlain>
                  {vms
                    .filter((v) => (v.damagedPoints ?? 0) > 0)
                    .map((v) => (
                      <ListItem key={v.id} id={`damaged-points-${v.id}`}>
                        {v.name}: {v.damagedPoints}
                      </ListItem>
                    ))}
                </List>
              </CardBody>
            </Card>
          ) : null}
        </Gallery>
      </StackItem>
    </Stack>
  );
}

/** Queues a verify of every point (useVerifyRepository; backup admins only); its end shows as a toast. */
function RepositoryVerifyButton({ me }: { me: Caller }) {
  const { t } = useTexts();
  const verify = useVerifyRepository(me);
  return (
    <ActionButton id="repository-verify" variant="link" isInline action={verify}>
      {t('verifyRepository')}
    </ActionButton>
  );
}
