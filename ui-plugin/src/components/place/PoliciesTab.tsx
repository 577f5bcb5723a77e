// The Policies tab's rendering: policies table, recent runs, delete confirmation (data and actions: hooks/usePolicies.ts).
import { Button, Card, CardBody, CardTitle, Label, List, ListItem, Modal, ModalBody, ModalFooter, ModalHeader, Stack, StackItem, ToolbarItem } from '@patternfly/react-core';
import type { PolicyRun, PolicyRunState, VmSummary } from '../../../../backend/src/api/contract';
import type { Caller } from '../../logic/access';
import { useTexts } from '../../context/appContext';
import type { ActionState } from '../../hooks/useAction';
import { usePolicies, type PolicyRow } from '../../hooks/usePolicies';
import { keyOf } from '../../intl/messages';
import { formatDateTime } from '../../logic/format';
import { cronText, retentionSummary, selectionText } from '../../logic/policyForm';
import { ActionButton } from '../common/ActionButton';
import { DataTable, type DataColumn } from '../common/DataTable';
import { ServiceErrorAlert } from '../common/StatusAlerts';
import { PolicyDialog } from './PolicyDialog';

const RUN_COLOR: Record<PolicyRunState, 'blue' | 'green' | 'red' | 'orange' | 'grey'> = {
  resolving: 'blue',
  running: 'blue',
  succeeded: 'green',
  partial: 'orange',
  failed: 'red',
  skipped: 'grey',
};

/** The Policies tab: the policies with their schedule in words, create/edit/delete, run now,
 *  recent runs (data and who may do what: usePolicies). */
export function PoliciesTab({ vms, refresh, onChanged, me }: { vms: VmSummary[]; refresh: unknown[]; onChanged: () => void; me: Caller }) {
  const { t, locale } = useTexts();
  const data = usePolicies(refresh, onChanged, me, vms);
  const { deleting } = data;

  const columns: Array<DataColumn<PolicyRow>> = [
    { key: 'name', title: t('colName'), sortValue: (p) => p.name, filterText: (p) => p.name, render: (p) => <span id={`policy-name-${p.id}`}>{p.name}</span> },
    {
      key: 'schedule',
      title: t('colSchedule'),
      sortValue: (p) => p.schedule,
      filterText: (p) => `${p.schedule} ${cronText(p.schedule, t, locale) ?? ''}`,
      render: (p) => (
        <span id={`policy-schedule-${p.id}`}>
          {cronText(p.schedule, t, locale) ?? p.schedule}
          <br />
          <small>
            <code>{p.schedule}</code> · {p.timeZone}
          </small>
        </span>
      ),
    },
    {
      key: 'verify',
      title: t('colVerify'),
      filterText: (p) => (p.verifySchedule ? `${p.verifySchedule} ${cronText(p.verifySchedule, t, locale) ?? ''}` : ''),
      render: (p) => <span id={`policy-verify-${p.id}`}>{p.verifySchedule ? (cronText(p.verifySchedule, t, locale) ?? p.verifySchedule) : t('verifyScheduleNone')}</span>,
    },
    { key: 'next', title: t('colNextRun'), sortValue: (p) => (p.nextRun ? Date.parse(p.nextRun) : null), render: (p) => <span id={`policy-next-${p.id}`}>{formatDateTime(p.nextRun, locale)}</span> },
    { key: 'selection', title: t('colSelection'), filterText: (p) => selectionText(p.selection, vms, t), render: (p) => selectionText(p.selection, vms, t) },
    { key: 'retention', title: t('colRetention'), render: (p) => retentionSummary(p.retention, t) },
    { key: 'lock', title: t('colLockDays'), sortValue: (p) => p.lockDays, render: (p) => (p.lockDays > 0 ? t('lockDaysValue', { n: p.lockDays }) : t('lockNone')) },
    {
      key: 'enabled',
      title: t('colEnabled'),
      sortValue: (p) => (p.enabled ? 1 : 0),
      render: (p) => (
        <Label isCompact color={p.enabled ? 'green' : 'grey'} id={`policy-enabled-${p.id}`}>
          {p.enabled ? t('enabledYes') : t('enabledNo')}
        </Label>
      ),
    },
    {
      key: 'actions',
      title: t('colActions'),
      render: (p) => (
        <>
          <ActionButton id={`policy-edit-${p.id}`} variant="link" isInline action={data.edit(p)} aria-label={t('policyEditOf', { name: p.name })}>
            {t('policyEdit')}
          </ActionButton>{' '}
          <RunNowButton policy={p} action={data.runNow(p)} />{' '}
          <ActionButton id={`policy-delete-${p.id}`} variant="link" isInline isDanger action={data.remove(p)} aria-label={t('policyDeleteOf', { name: p.name })}>
            {t('policyDelete')}
          </ActionButton>
        </>
      ),
    },
  ];

  return (
    <Stack hasGutter id="policies">
      <StackItem>
        <ServiceErrorAlert id="policies-error" error={data.error} onRetry={data.retry} />
        <DataTable
          id="policies-table"
          ariaLabel={t('policiesTitle')}
          columns={columns}
          rows={data.policies}
          rowKey={(p) => p.id}
          rowId={(p) => `policy-row-${p.id}`}
          emptyText={t('policyNone')}
          initialSort={{ key: 'name', direction: 'asc' }}
          toolbarExtra={
            <ToolbarItem>
              <ActionButton id="policy-create" variant="primary" action={data.create}>
                {t('policyCreate')}
              </ActionButton>
            </ToolbarItem>
          }
        />
      </StackItem>
      <StackItem>
        <Card id="policy-runs" isCompact>
          <CardTitle>{t('recentRunsTitle')}</CardTitle>
          <CardBody>
            <RunsTable runs={data.runs} />
          </CardBody>
        </Card>
      </StackItem>
      {data.editing ? <PolicyDialog policy={data.editing === 'new' ? null : data.editing} vms={vms} me={me} onClose={data.closeEditor} onSaved={data.saved} /> : null}
      {deleting ? (
        <Modal id="policy-delete-dialog" isOpen variant="small" onClose={data.cancelDelete} aria-labelledby="policy-delete-title">
          <ModalHeader title={t('policyDeleteTitle', { name: deleting.name })} labelId="policy-delete-title" titleIconVariant="warning" />
          <ModalBody>{t('policyDeleteBody')}</ModalBody>
          <ModalFooter>
            <ActionButton id="policy-delete-confirm" variant="danger" action={data.confirmDelete}>
              {t('policyDeleteConfirm')}
            </ActionButton>
            <Button id="policy-delete-cancel" variant="link" onClick={data.cancelDelete}>
              {t('cancel')}
            </Button>
          </ModalFooter>
        </Modal>
      ) : null}
    </Stack>
  );
}

/** Run now: busy while the service starts the run (its progress then shows in the runs table). */
function RunNowButton({ policy: p, action }: { policy: PolicyRow; action: ActionState }) {
  const { t } = useTexts();
  return (
    <ActionButton id={`policy-run-${p.id}`} variant="link" isInline action={action} aria-label={t('policyRunNowOf', { name: p.name })}>
      {t('policyRunNow')}
    </ActionButton>
  );
}

function RunsTable({ runs }: { runs: PolicyRun[] }) {
  const { t, locale } = useTexts();
  const columns: Array<DataColumn<PolicyRun>> = [
    { key: 'created', title: t('colStarted'), sortValue: (r) => Date.parse(r.createdAt), filterText: (r) => r.id, render: (r) => formatDateTime(r.createdAt, locale) },
    { key: 'policy', title: t('colPolicy'), sortValue: (r) => r.policyName, filterText: (r) => r.policyName, render: (r) => r.policyName },
    { key: 'trigger', title: t('colTrigger'), sortValue: (r) => r.trigger, render: (r) => t(keyOf('trigger', r.trigger)) },
    {
      key: 'state',
      title: t('colState'),
      sortValue: (r) => r.state,
      render: (r) => (
        <Label isCompact color={RUN_COLOR[r.state]} id={`policy-run-state-${r.id}`} data-state={r.state}>
          {t(keyOf('runState', r.state))}
        </Label>
      ),
    },
    {
      key: 'vms',
      title: t('colVms'),
      filterText: (r) => r.vms.map((v) => v.vmName).join(' '),
      render: (r) => (
        <>
          <small>{t('runVmsDone', { done: r.vms.filter((v) => v.state !== 'pending' && v.state !== 'queued' && v.state !== 'running').length, total: r.vms.length })}</small>
          <List isPlain>
            {r.vms.map((v) => (
              <ListItem key={v.vmId} id={`policy-run-${r.id}-vm-${v.vmId}`} data-state={v.state}>
                {v.vmName}: {v.state === 'pending' ? t('vmStatePending') : v.state === 'skipped' ? t('vmStateSkipped') : t(keyOf('state', v.state))}
                {v.reason ? ` (${v.reason})` : ''}
              </ListItem>
            ))}
          </List>
          {r.message ? <small>{r.message}</small> : null}
        </>
      ),
    },
    { key: 'finished', title: t('colFinished'), sortValue: (r) => (r.finishedAt ? Date.parse(r.finishedAt) : null), render: (r) => formatDateTime(r.finishedAt, locale) },
  ];
  return <DataTable id="policy-runs-table" ariaLabel={t('recentRunsTitle')} columns={columns} rows={runs} rowKey={(r) => r.id} rowId={(r) => `policy-run-row-${r.id}`} emptyText={t('noRuns')} initialSort={{ key: 'created', direction: 'desc' }} perPage={5} />;
}
