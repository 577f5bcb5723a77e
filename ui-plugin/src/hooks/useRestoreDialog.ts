/**
 * The Restore… dialog's data, state and actions: the VM's points, the chosen point's detail,
 * the form (logic/restoreForm.ts's reducer), the plan asked for on every change
 * (useRestorePlan), the problems that block Restore, what the user may not do here and why
 * (original ids, the plan's clusters and domains, attaching, downloads: logic/access.ts), and
 * the restore started from here, followed live. The decisions (body, problems, grouping, may it
 * start) are logic/restoreForm's and logic/access's.
 */
import { useCallback, useEffect, useMemo, useReducer, useRef, useState, type Dispatch } from 'react';
import type { Job, PointDetail, PointSummary, RestorePlanView, WhoAmI } from '../../../backend/src/api/contract';
import { TOKENS } from '../constants';
import { useApp } from '../context/appContext';
import { adminDenial, deniedText, downloadDenial, restoreDenial, restoreIntoDenial, type VmRef } from '../logic/access';
import { isActive } from '../logic/progress';
import {
  canSubmit,
  formReducer,
  groupProblems,
  identityVmName,
  initialForm,
  initialPointId,
  localProblems,
  plannedDomains,
  pointsNewestFirst,
  refusedProblems,
  restoreBody,
  shownProblems,
  type FormAction,
  type Identity,
  type ProblemGroups,
  type Refusal,
  type RestoreForm,
} from '../logic/restoreForm';
import { ServiceError } from '../services/serviceError';
import type { StreamStatus } from '../services/eventStream';
import { useAction, type ActionState } from './useAction';
import { useLive } from './useLive';
import { useLoader } from './useLoader';
import { useRestorePlan, type RestorePlanState } from './useRestorePlan';
import { useWhoAmI } from './useWhoAmI';

/** What a plan says of one disk of the point (its default name, domain, format, data size). */
export type PlannedDisk = RestorePlanView['disks'][number];

export interface RestoreDialog {
  status: StreamStatus;
  /** The VM's points, newest first. */
  points: PointSummary[];
  pointsLoaded: boolean;
  pointsLoading: boolean;
  /** The points or the chosen point's detail could not be loaded. */
  loadError: unknown;
  retryLoad: () => void;
  form: RestoreForm;
  dispatch: Dispatch<FormAction>;
  /** The chosen point's detail, once it is the chosen one's. */
  point: PointDetail | null;
  pointLoading: boolean;
  ovfAvailable: boolean;
  planned: RestorePlanState;
  /** The plan of the chosen point (a plan of the previous one is not shown). */
  plan: RestorePlanView | null;
  /** What the latest plan that had the disk said of it: a disk left out has no row in the plan
   *  now, and keeps showing its size, format and default name. */
  plannedDisk: (device: string) => PlannedDisk | undefined;
  groups: ProblemGroups;
  /** The problems shown are the form's own (the plan is not asked for). */
  localOnly: boolean;
  planOk: boolean;
  /** Restore: blocked until the plan allows it, disabled with `submitReason` when a permit is
   *  missing, busy while the service starts the job. */
  submit: ActionState;
  /** A restore is starting or running: the form is read-only. */
  locked: boolean;
  /** The restore started from this dialog, live. */
  job: Job | null;
  startError: unknown;
  /** WebAdmin's VM list searched for what the restore created; the dialog closes. */
  showVm: (vmName: string) => void;
  me: WhoAmI | null;
  /** The VM's name as it was backed up (the original's, for "under its original ids"). */
  originalName: string;
  /** Why the user may not start the restore the plan describes; undefined: they may. */
  submitReason: string | undefined;
  /** Why the user may not restore under the original ids (not a backup admin). */
  originalIdsReason: string | undefined;
  /** Why the user may not attach the disks to a VM (configure_vm_storage). */
  attachReason: (vmId: string) => string | undefined;
  /** Why the user may not download the point's disks. */
  downloadReason: string | undefined;
}

/**
 * `deleted`: the engine no longer has the VM (opened from the Deleted VMs view): the form starts
 * on bringing it back under its original ids. The VM list is loaded all the same — it says which
 * VMs the disks may be attached to —, it just does not name this VM (its download is then the
 * service's to refuse or allow).
 */
export function useRestoreDialog(vmId: string | null, vmName: string, wantedPoint: string | null, deleted = false): RestoreDialog {
  const { client, t, bridge } = useApp();
  const live = useLive();
  const me = useWhoAmI();
  const points = useLoader(() => (vmId ? client.vmPointListAll(vmId) : Promise.resolve([])), [vmId]);
  // the VMs' access flags: attaching to one, downloading this one's disks
  const vms = useLoader(() => client.vmList(), [client]);
  const byId = useMemo(() => new Map((vms.data?.vms ?? []).map((v) => [v.id, v])), [vms.data]);
  const vmOf = useCallback((id: string): VmRef | undefined => byId.get(id), [byId]);
  const list = useMemo(() => pointsNewestFirst(points.data ?? []), [points.data]);
  const startIdentity: Identity = deleted ? 'original' : 'new';
  const [form, dispatch] = useReducer(formReducer, vmName, (name) => initialForm(name, null, startIdentity));
  const originalName = vmName || list[0]?.vmName || '';

  // the point: the one asked for, else the newest; the VM's name from the points when the URL had none
  useEffect(() => {
    if (form.pointId || list.length === 0) return;
    const id = initialPointId(list, wantedPoint);
    if (id) dispatch({ type: 'point', pointId: id });
    if (!vmName && list[0]) dispatch({ type: 'vmName', value: identityVmName(startIdentity, list[0].vmName) });
  }, [list, form.pointId, wantedPoint, vmName, startIdentity]);

  const detail = useLoader(() => (form.pointId ? client.pointGet(form.pointId) : Promise.resolve(null)), [form.pointId]);
  const point = detail.data && detail.data.id === form.pointId ? detail.data : null;
  const devices = useMemo(() => point?.disks.map((d) => d.device) ?? [], [point]);
  const ovfAvailable = point?.ovfAvailable ?? true;
  const body = useMemo(() => (point ? restoreBody(form, devices, ovfAvailable) : null), [form, devices, ovfAvailable, point]);
  const local = useMemo(() => (point ? localProblems(form, devices, t, ovfAvailable) : []), [form, devices, t, ovfAvailable, point]);
  const planned = useRestorePlan(point ? form.pointId : null, body, !point ? 'waiting' : local.length > 0 ? 'invalid' : null);
  const plan = planned.plan && planned.plan.pointId === form.pointId ? planned.plan : null;
  // every plan's disks merged by device, the newest winning: a disk left out is not in the plan
  const lastPlanned = useRef(new Map<string, PlannedDisk>());
  const plannedDisk = useMemo(() => {
    for (const d of plan?.disks ?? []) lastPlanned.current.set(d.device, d);
    const known = new Map(lastPlanned.current);
    return (device: string): PlannedDisk | undefined => known.get(device);
  }, [plan]);

  // the restore started from here
  const [jobId, setJobId] = useState<string | null>(null);
  const [refused, setRefused] = useState<Refusal<RestorePlanView> | null>(null);
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

  const { problems, planOk } = shownProblems({ local, refused, bodyKey, plan });
  const groups = groupProblems(problems, { devices, domainOf: plannedDomains(plan) });
  const submitReason = deniedText(t, restoreDenial(plan, body, me, vmOf));
  const target = form.pointId && body ? { pointId: form.pointId, body } : null;
  const submit = useAction(
    async () => {
      if (!target) throw new Error('nothing to restore yet'); // blocked below: never reached
      setStartError(null);
      return (await client.restoreStart(target.pointId, target.body)).job;
    },
    (started) => {
      live.addJobs([started]);
      setJobId(started.id);
      bridge.toast('info', t('toastRestoreStarted', { vm: started.vmName }));
    },
    (err) => {
      // the refusal is of the body and plan of the click (this render's)
      const problemsOf = err instanceof ServiceError && err.code === 'RESTORE_REFUSED' ? refusedProblems(err.details) : [];
      if (problemsOf.length > 0) {
        setRefused({ key: bodyKey, problems: problemsOf, plan });
        planned.refresh();
      } else setStartError(err);
    },
    { disabledReason: submitReason, blocked: !target || !canSubmit({ planStatus: planned.status, planCurrent: planned.current, planOk, jobActive }) },
  );

  return {
    status: live.status,
    points: list,
    pointsLoaded: points.data !== null,
    pointsLoading: points.loading,
    loadError: points.error || detail.error,
    retryLoad: () => (points.error ? points.reload() : detail.reload()),
    form,
    dispatch,
    point,
    pointLoading: detail.loading,
    ovfAvailable,
    planned,
    plan,
    plannedDisk,
    groups,
    localOnly: local.length > 0,
    planOk,
    submit,
    locked: submit.busy || jobActive,
    job,
    startError,
    showVm: (name) => bridge.showVm(name, TOKENS.restoreDialog),
    me,
    originalName,
    submitReason,
    originalIdsReason: deniedText(t, adminDenial(me, 'deniedOriginalIds')),
    attachReason: (id) => deniedText(t, restoreIntoDenial(vmOf(id))),
    downloadReason: vmId ? deniedText(t, downloadDenial(vmOf(vmId), me)) : undefined,
  };
}
