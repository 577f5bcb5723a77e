// The Restore… dialog's plan status: checking, the problems that block or warn, what will be created.
import { Alert, List, ListItem, Spinner } from '@patternfly/react-core';
import type { RestorePlanView, RestoreProblem } from '../../../../backend/src/api/contract';
import { formatBytes } from '../../logic/format';
import type { PlanStatus, ProblemGroups } from '../../logic/restoreForm';
import { useTexts } from '../../context/appContext';

interface Props {
  status: PlanStatus;
  planError: unknown;
  groups: ProblemGroups;
  plan: RestorePlanView | null;
  /** The problems are the form's own (the plan is not asked for). */
  local: boolean;
  planOk: boolean;
  /** The plan is fine but not the user's to carry out (a missing permit): said instead of "ready". */
  denied: string | undefined;
}

function ProblemList({ problems }: { problems: RestoreProblem[] }) {
  return (
    <List>
      {problems.map((p, i) => (
        <ListItem key={`${p.code}-${p.subject ?? ''}-${i}`} data-code={p.code} data-severity={p.severity} data-subject={p.subject ?? ''}>
          {p.message}
        </ListItem>
      ))}
    </List>
  );
}

/**
 * What the plan says, above Restore: checking…, the problems (errors block, warnings inform),
 * what will be created, or why the user may not create it. `data-state` and `data-ok` say where
 * the plan stands, for tests.
 */
export function RestoreProblems({ status, planError, groups, plan, local, planOk, denied }: Props) {
  const { t, locale, errorText } = useTexts();
  const upload = (plan?.disks ?? []).reduce((n, d) => n + d.dataBytes, 0);
  const count = plan?.disks.length ?? 0;
  let summary = '';
  if (plan?.vm) summary = t('restorePlanSummaryVm', { vm: plan.vm.name, cluster: plan.vm.clusterName, count, bytes: formatBytes(upload, locale) });
  else if (plan?.attachToVmId) {
    const target = plan.targets.vms.find((v) => v.id === plan.attachToVmId)?.name ?? plan.attachToVmId;
    summary = t('restorePlanSummaryDisks', { count, bytes: formatBytes(upload, locale), vm: target });
  } else if (plan) summary = t('restorePlanSummaryFloating', { count, bytes: formatBytes(upload, locale) });

  return (
    <div id="restore-problems" data-state={status} data-ok={String(planOk && status === 'ready')} aria-live="polite">
      <div id="restore-plan-status">
        {status === 'planning' ? (
          <span>
            <Spinner size="sm" aria-hidden /> {t('restorePlanning')}
          </span>
        ) : status === 'failed' ? (
          <Alert id="restore-plan-error" variant="danger" isInline isPlain title={t('restorePlanFailed', { reason: errorText(planError) })} />
        ) : status === 'ready' && denied ? (
          // the missing permit first: a plan the user may not carry out may also have errors
          // (no cluster to restore into), which it explains
          <Alert id="restore-denied" variant="warning" isInline isPlain title={denied}>
            {planOk ? summary : null}
          </Alert>
        ) : status === 'ready' && planOk ? (
          <Alert id="restore-plan-ready" variant="success" isInline isPlain title={`${t('restorePlanReady')} ${summary}`} />
        ) : null}
      </div>
      {groups.errors.length > 0 ? (
        <Alert id="restore-errors" variant="danger" isInline title={local ? t('problemLocal') : t('restoreErrorsTitle', { count: groups.errors.length })}>
          <ProblemList problems={groups.errors} />
        </Alert>
      ) : null}
      {groups.warnings.length > 0 ? (
        <Alert id="restore-warnings" variant="warning" isInline isPlain title={t('restoreWarningsTitle', { count: groups.warnings.length })}>
          <ProblemList problems={groups.warnings} />
        </Alert>
      ) : null}
    </div>
  );
}
