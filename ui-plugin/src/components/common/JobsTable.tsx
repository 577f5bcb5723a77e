// The jobs table of the place and the VM tab: state filter, live progress of active jobs, older pages on demand.
import { FormSelect, FormSelectOption, Label, ToolbarItem } from '@patternfly/react-core';
import { useState } from 'react';
import type { Job, JobState } from '../../../../backend/src/api/contract';
import { keyOf } from '../../intl/messages';
import { formatBytes, formatDateTime, formatDuration } from '../../logic/format';
import { isActive, jobDurationSeconds } from '../../logic/progress';
import { pointMethodKey } from '../../logic/backupChoices';
import { useTexts } from '../../context/appContext';
import type { ActionState } from '../../hooks/useAction';
import { ActionButton } from './ActionButton';
import { DataTable, type DataColumn } from './DataTable';
import { JobProgress } from './JobProgress';
import { JobStateLabel } from './Labels';

const STATES: JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'];

interface Props {
  id: string;
  jobs: Job[];
  showVm: boolean;
  cancel: (job: Job) => ActionState;
  /** "Load older jobs"; absent when no older page is left. */
  loadOlder?: ActionState | undefined;
}

/** Jobs with live progress for active ones; filter by text and state; older pages on demand. */
export function JobsTable({ id, jobs, showVm, cancel, loadOlder }: Props) {
  const { t, locale } = useTexts();
  const [state, setState] = useState<JobState | ''>('');
  const columns: Array<DataColumn<Job>> = [
    { key: 'created', title: t('colStarted'), sortValue: (j) => Date.parse(j.startedAt ?? j.createdAt), filterText: (j) => j.id, render: (j) => formatDateTime(j.startedAt ?? j.createdAt, locale) },
    ...(showVm ? [{ key: 'vm', title: t('colVm'), sortValue: (j: Job) => j.vmName, filterText: (j: Job) => j.vmName, render: (j: Job) => j.vmName }] : []),
    {
      key: 'state',
      title: t('colState'),
      sortValue: (j) => j.state,
      render: (j) => (
        <>
          <JobStateLabel state={j.state} id={`job-state-${j.id}`} />
          {j.kind !== 'backup' ? (
            <>
              {' '}
              <Label isCompact variant="outline" id={`job-kind-${j.id}`}>
                {j.kind === 'restore' ? t('jobKindRestore') : j.kind === 'bootcheck' ? t('jobKindBootcheck') : j.kind === 'sync' ? t('jobKindSync') : t('jobKindVerify')}
              </Label>
            </>
          ) : null}
        </>
      ),
    },
    {
      key: 'progress',
      title: t('colResult'),
      render: (j) =>
        isActive(j) ? (
          <JobProgress job={j} cancel={cancel} />
        ) : j.state === 'succeeded' && j.result && j.kind === 'restore' ? (
          t('restoreResultShort', { uploaded: formatBytes(j.result.bytesRead, locale), target: j.result.restored?.vmName ?? (j.result.restored?.disks ?? []).map((d) => d.name).join(', ') })
        ) : j.state === 'succeeded' && j.result?.verified ? (
          j.result.verified.damaged.length > 0 ? t('toastVerifyDamaged', { vm: j.vmName, points: j.result.verified.points, damaged: j.result.verified.damaged.length }) : t('toastVerifyOk', { vm: j.vmName, points: j.result.verified.points })
        ) : j.state === 'succeeded' && j.result ? (
          <span id={`job-result-${j.id}`} data-method={j.result.method ?? 'qmp'}>
            {`${formatBytes(j.result.bytesRead, locale)} → ${formatBytes(j.result.bytesStored, locale)} · ${t(pointMethodKey(j.result.method))}`}
          </span>
        ) : (
          (j.error?.message ?? '')
        ),
    },
    { key: 'duration', title: t('colDuration'), sortValue: (j) => jobDurationSeconds(j), render: (j) => formatDuration(jobDurationSeconds(j)) },
    { key: 'by', title: t('colRequestedBy'), sortValue: (j) => j.requestedBy.name, filterText: (j) => j.requestedBy.name, render: (j) => j.requestedBy.name },
  ];
  const extra = (
    <ToolbarItem>
      <FormSelect id={`${id}-state`} aria-label={t('stateFilterLabel')} value={state} onChange={(_e, v) => setState(v as JobState | '')}>
        <FormSelectOption value="" label={t('allStates')} />
        {STATES.map((s) => (
          <FormSelectOption key={s} value={s} label={t(keyOf('state', s))} />
        ))}
      </FormSelect>
    </ToolbarItem>
  );
  return (
    <DataTable
      id={id}
      ariaLabel={t('tabJobs')}
      columns={columns}
      rows={jobs}
      rowKey={(j) => j.id}
      rowId={(j) => `job-row-${j.id}`}
      emptyText={t('noJobs')}
      initialSort={{ key: 'created', direction: 'desc' }}
      toolbarExtra={extra}
      extraFilter={state ? (j) => j.state === state : undefined}
      footer={
        loadOlder ? (
          <ActionButton id={`${id}-older`} variant="link" action={loadOlder}>
            {t('loadOlder')}
          </ActionButton>
        ) : null
      }
    />
  );
}
