import { Button, Card, CardBody, CardTitle, Label, List, ListItem, Modal, ModalBody, ModalFooter, ModalHeader, Stack, StackItem, ToolbarItem } from '@patternfly/react-core';
import { useEffect, useRef, useState } from 'react';
import type { Policy, PolicyList, PolicyRun, PolicyRunState, VmSummary } from '../../../../backend/src/api/contract';
import { useLoader } from '../../hooks/useLoader';
import { keyOf } from '../../intl/messages';
import { errorReason } from '../../logic/errorText';
import { formatDateTime } from '../../logic/format';
import { cronText, isRunActive, retentionSummary, selectionText } from '../../logic/policyForm';
import { useApp } from '../AppContext';
import { DataTable, type DataColumn } from '../common/DataTable';
import { ServiceErrorAlert } from '../common/StatusAlerts';
import { PolicyDialog } from './PolicyDialog';

type Row = PolicyList['policies'][number];

const RUN_COLOR: Record<PolicyRunState, 'blue' | 'green' | 'red' | 'orange' | 'grey'> = {
  resolving: 'blue',
  running: 'blue',
  succeeded: 'green',
  partial: 'orange',
  failed: 'red',
  skipped: 'grey',
};

/** Polling period of the runs while one is going (runs have no live event of their own). */
const RUN_POLL_MS = 1500;
const RETENTION_SETTLE_MS = 3000;

/** The Policies tab: the policies with their schedule in words, create/edit/delete, run now, recent runs. */
export function PoliciesTab({ vms, refresh, onChanged }: { vms: VmSummary[]; refresh: unknown[]; onChanged: () => void }) {
  const { client, t, locale, bridge } = useApp();
  const policies = useLoader(() => client.policyList(), refresh);
  const runs = useLoader(() => client.policyRunList(50), refresh);
  const [editing, setEditing] = useState<Policy | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Policy | null>(null);
  const [busy, setBusy] = useState<Record<string, boolean>>({});
  const active = (runs.data?.runs ?? []).some((r) => isRunActive(r.state));

  // a run that ended changed points (new ones, their locks, pruned ones) and VMs' last backups
  // (retention runs just after the run ends: look again a little later for its locks and prunes)
  const finished = (runs.data?.runs ?? []).filter((r) => !isRunActive(r.state)).map((r) => r.id).join(',');
  const lastFinished = useRef<string | null>(null);
  const runsLoaded = runs.data !== null;
  useEffect(() => {
    if (!runsLoaded) return;
    const before = lastFinished.current;
    lastFinished.current = finished;
    if (before === null || before === finished) return;
    onChanged();
    const later = setTimeout(onChanged, RETENTION_SETTLE_MS);
    return () => clearTimeout(later);
  }, [finished, runsLoaded, onChanged]);

  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => runs.reload(), RUN_POLL_MS);
    return () => clearInterval(timer);
  }, [active, runs.reload]);

  const runNow = (p: Policy): void => {
    setBusy((b) => ({ ...b, [p.id]: true }));
    client.policyRun(p.id).then(
      () => {
        setBusy((b) => ({ ...b, [p.id]: false }));
        bridge.toast('info', t('policyRunStarted', { name: p.name }));
        runs.reload();
      },
      (err: unknown) => {
        setBusy((b) => ({ ...b, [p.id]: false }));
        bridge.toast('danger', t('policyRunFailed', { name: p.name, reason: errorReason(err) }));
      },
    );
  };

  const remove = (p: Policy): void => {
    client.policyDelete(p.id).then(
      () => {
        setDeleting(null);
        bridge.toast('success', t('policyDeleted', { name: p.name }));
        policies.reload();
        onChanged();
      },
      (err: unknown) => {
        setDeleting(null);
        bridge.toast('danger', t('policyDeleteFailed', { name: p.name, reason: errorReason(err) }));
      },
    );
  };

  const columns: Array<DataColumn<Row>> = [
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
          <Button id={`policy-edit-${p.id}`} variant="link" isInline onClick={() => setEditing(p)} aria-label={t('policyEditOf', { name: p.name })}>
            {t('policyEdit')}
          </Button>{' '}
          <Button id={`policy-run-${p.id}`} variant="link" isInline onClick={() => runNow(p)} isLoading={busy[p.id] === true} isDisabled={busy[p.id] === true} aria-label={t('policyRunNowOf', { name: p.name })}>
            {t('policyRunNow')}
          </Button>{' '}
          <Button id={`policy-delete-${p.id}`} variant="link" isInline isDanger onClick={() => setDeleting(p)} aria-label={t('policyDeleteOf', { name: p.name })}>
            {t('policyDelete')}
          </Button>
        </>
      ),
    },
  ];

  return (
    <Stack hasGutter id="policies">
      <StackItem>
        <ServiceErrorAlert id="policies-error" error={policies.error || runs.error} onRetry={() => (policies.reload(), runs.reload())} />
        <DataTable
          id="policies-table"
          ariaLabel={t('policiesTitle')}
          columns={columns}
          rows={policies.data?.policies ?? []}
          rowKey={(p) => p.id}
          rowId={(p) => `policy-row-${p.id}`}
          emptyText={t('policyNone')}
          initialSort={{ key: 'name', direction: 'asc' }}
          toolbarExtra={
            <ToolbarItem>
              <Button id="policy-create" variant="primary" onClick={() => setEditing('new')}>
                {t('policyCreate')}
              </Button>
            </ToolbarItem>
          }
        />
      </StackItem>
      <StackItem>
        <Card id="policy-runs" isCompact>
          <CardTitle>{t('recentRunsTitle')}</CardTitle>
          <CardBody>
            <RunsTable runs={runs.data?.runs ?? []} />
          </CardBody>
        </Card>
      </StackItem>
      {editing ? (
        <PolicyDialog
          policy={editing === 'new' ? null : editing}
          vms={vms}
          onClose={() => setEditing(null)}
          onSaved={() => {
            policies.reload();
            onChanged();
          }}
        />
      ) : null}
      {deleting ? (
        <Modal id="policy-delete-dialog" isOpen variant="small" onClose={() => setDeleting(null)} aria-labelledby="policy-delete-title">
          <ModalHeader title={t('policyDeleteTitle', { name: deleting.name })} labelId="policy-delete-title" titleIconVariant="warning" />
          <ModalBody>{t('policyDeleteBody')}</ModalBody>
          <ModalFooter>
            <Button id="policy-delete-confirm" variant="danger" onClick={() => remove(deleting)}>
              {t('policyDeleteConfirm')}
            </Button>
            <Button id="policy-delete-cancel" variant="link" onClick={() => setDeleting(null)}>
              {t('cancel')}
            </Button>
          </ModalFooter>
        </Modal>
      ) : null}
    </Stack>
  );
}

function RunsTable({ runs }: { runs: PolicyRun[] }) {
  const { t, locale } = useApp();
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
