/**
 * The Policies tab's data and actions: the policies and their recent runs (polled while a run
 * is going: runs have no live event of their own), create, edit, Run now, delete (with its
 * confirmation state) and the editor's open state — each disabled with its reason when the user
 * may not do it (logic/access.ts). A run that ends, and every save or delete, tells the place
 * through `onChanged` that VMs' summaries may have changed.
 */
import { useEffect, useRef, useState } from 'react';
import type { Policy, PolicyList, PolicyRun } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { deniedText, policyCreateDenial, policyManageDenial, type Caller, type VmRef } from '../logic/access';
import { errorReason } from '../logic/errorText';
import { isRunActive } from '../logic/policyForm';
import { localAction, useAction, useKeyedAction, type ActionState } from './useAction';
import { useLoader } from './useLoader';

/** Polling period of the runs while one is going. */
const RUN_POLL_MS = 1500;
/** Retention runs just after a run ends: look again this much later for its locks and prunes. */
const RETENTION_SETTLE_MS = 3000;

export type PolicyRow = PolicyList['policies'][number];

export interface PoliciesData {
  policies: PolicyRow[];
  runs: PolicyRun[];
  error: unknown;
  retry: () => void;
  runNow: (p: Policy) => ActionState;
  /** Open the editor on a new policy. */
  create: ActionState;
  /** Open the editor on a policy. */
  edit: (p: Policy) => ActionState;
  /** Ask to delete a policy (a confirmation first). */
  remove: (p: Policy) => ActionState;
  /** The policy in the editor ('new': a policy being created), null when it is closed. */
  editing: Policy | 'new' | null;
  closeEditor: () => void;
  /** The editor saved a policy (it stays open, showing the next runs). */
  saved: () => void;
  /** The policy whose deletion waits for confirmation. */
  deleting: Policy | null;
  cancelDelete: () => void;
  /** Delete the policy waiting for confirmation (once: a double click sends one DELETE). */
  confirmDelete: ActionState;
}

/** `onChanged` must be stable (a timer after a run's end depends on it); `me` and `vms` say what
 *  the user may manage. */
export function usePolicies(refresh: unknown[], onChanged: () => void, me: Caller, vms: readonly VmRef[]): PoliciesData {
  const { client, bridge, t } = useApp();
  const policies = useLoader(() => client.policyList(), refresh);
  const runs = useLoader(() => client.policyRunList(50), refresh);
  const [editing, setEditing] = useState<Policy | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Policy | null>(null);
  const runList = runs.data?.runs ?? [];
  const active = runList.some((r) => isRunActive(r.state));

  // a run that ended changed points (new ones, their locks, pruned ones) and VMs' last backups
  const finished = runList.filter((r) => !isRunActive(r.state)).map((r) => r.id).join(',');
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

  const manageReason = (p: Policy): string | undefined => deniedText(t, policyManageDenial(p, me, vms));
  const runNow = useKeyedAction(
    (p: Policy) => p.id,
    (p) => client.policyRun(p.id),
    (p) => {
      bridge.toast('info', t('policyRunStarted', { name: p.name }));
      runs.reload();
    },
    (p, err) => bridge.toast('danger', t('policyRunFailed', { name: p.name, reason: errorReason(err) })),
    manageReason,
  );

  // the policy is the one confirmed at the click: the dialog may close before the answer
  const confirmDelete = useAction(
    async () => {
      const p = deleting;
      if (!p) throw new Error('no policy waits for confirmation'); // blocked below: never reached
      await client.policyDelete(p.id);
      return p;
    },
    (p) => {
      setDeleting(null);
      bridge.toast('success', t('policyDeleted', { name: p.name }));
      policies.reload();
      onChanged();
    },
    (err) => {
      setDeleting(null);
      bridge.toast('danger', t('policyDeleteFailed', { name: deleting?.name ?? '', reason: errorReason(err) }));
    },
    { blocked: deleting === null },
  );

  return {
    policies: policies.data?.policies ?? [],
    runs: runList,
    error: policies.error || runs.error,
    retry: () => {
      policies.reload();
      runs.reload();
    },
    runNow,
    create: localAction(() => setEditing('new'), deniedText(t, policyCreateDenial(me, vms))),
    edit: (p) => localAction(() => setEditing(p), manageReason(p)),
    remove: (p) => localAction(() => setDeleting(p), manageReason(p)),
    editing,
    closeEditor: () => setEditing(null),
    saved: () => {
      policies.reload();
      onChanged();
    },
    deleting,
    cancelDelete: () => setDeleting(null),
    confirmDelete,
  };
}
