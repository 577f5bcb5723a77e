/**
 * The Restore dialog's form, pure: its state and reducer, the request body the plan and
 * restore routes get from it, the checks made before asking the service, how the plan's
 * problems map onto the fields, and when Restore may be pressed. No DOM, no React.
 */
import type { PointSummary, RestorePlanView, RestoreProblem, RestoreRequestBody } from '../../../backend/src/api/contract';
import type { Translate } from '../intl/messages';

/** What the service appends to the original's name by default (contract: `<original>-restored`). */
export const RESTORED_SUFFIX = '-restored';

/** Engine names the service accepts for VMs and disks (its schema: letters, digits, `_`, `-`, `.`). */
const NAME_RE = /^[\w.-]+$/;
const NAME_MAX = 255;

export interface DiskChoice {
  include: boolean;
  /** What the user typed; '' = the plan's default name. */
  name: string;
  /** null = the plan's default domain (the original's, else the first with room). */
  storageDomainId: string | null;
}

export interface RestoreForm {
  pointId: string | null;
  /** Restore the VM definition from the OVF (a new VM); off = disks only. */
  fromOvf: boolean;
  vmName: string;
  /** null = the plan's default (the original's cluster). */
  clusterId: string | null;
  regenerateIds: boolean;
  regenerateMacs: boolean;
  useProxy: boolean;
  /** Disks only: attach the new disks to this VM; null = leave them unattached. */
  attachToVmId: string | null;
  /** By device; a device without an entry has the defaults. */
  disks: Record<string, DiskChoice>;
}

export const DEFAULT_DISK: DiskChoice = { include: true, name: '', storageDomainId: null };

export function defaultVmName(original: string): string {
  return `${original}${RESTORED_SUFFIX}`;
}

/** What the restored VM is: a new VM (new ids, `<name>-restored`), or the original brought back
 *  under its own ids, name and MAC addresses (a VM the engine no longer has). */
export type Identity = 'new' | 'original';

/** The VM name an identity gives: the original's own, or `<original>-restored`. */
export function identityVmName(identity: Identity, originalVmName: string): string {
  return identity === 'original' ? originalVmName : defaultVmName(originalVmName);
}

/** The form's fields an identity sets. */
function identityFields(identity: Identity, originalVmName: string): Pick<RestoreForm, 'vmName' | 'regenerateIds' | 'regenerateMacs'> {
  const vmName = identityVmName(identity, originalVmName);
  return identity === 'original' ? { vmName, regenerateIds: false, regenerateMacs: false } : { vmName, regenerateIds: true, regenerateMacs: true };
}

export function initialForm(originalVmName: string, pointId: string | null = null, identity: Identity = 'new'): RestoreForm {
  return {
    pointId,
    fromOvf: true,
    ...identityFields(identity, originalVmName),
    clusterId: null,
    useProxy: false,
    attachToVmId: null,
    disks: {},
  };
}

/** The identity the form restores under (its ids decide; the name and MACs may be changed after). */
export function identityOf(form: Pick<RestoreForm, 'regenerateIds'>): Identity {
  return form.regenerateIds ? 'new' : 'original';
}

/** Points newest first (by completion). */
export function pointsNewestFirst<T extends Pick<PointSummary, 'completedAt'>>(points: readonly T[]): T[] {
  return [...points].sort((a, b) => Date.parse(b.completedAt) - Date.parse(a.completedAt));
}

/** The point the dialog opens on: the one asked for when the VM has it, else the newest. */
export function initialPointId(points: ReadonlyArray<Pick<PointSummary, 'id' | 'completedAt'>>, wanted: string | null): string | null {
  if (wanted && points.some((p) => p.id === wanted)) return wanted;
  return pointsNewestFirst(points)[0]?.id ?? null;
}

export type FormAction =
  | { type: 'point'; pointId: string }
  | { type: 'fromOvf'; value: boolean }
  | { type: 'vmName'; value: string }
  | { type: 'cluster'; value: string | null }
  | { type: 'flag'; flag: 'regenerateIds' | 'regenerateMacs' | 'useProxy'; value: boolean }
  | { type: 'identity'; value: Identity; originalVmName: string }
  | { type: 'attachTo'; value: string | null }
  | { type: 'disk'; device: string; change: Partial<DiskChoice> };

export function formReducer(form: RestoreForm, a: FormAction): RestoreForm {
  switch (a.type) {
    case 'point':
      // another point of the same VM: its disks are the same devices, the choices stay
      return a.pointId === form.pointId ? form : { ...form, pointId: a.pointId };
    case 'fromOvf':
      return { ...form, fromOvf: a.value };
    case 'vmName':
      return { ...form, vmName: a.value };
    case 'cluster':
      return { ...form, clusterId: a.value || null };
    case 'flag':
      return { ...form, [a.flag]: a.value };
    case 'identity':
      return identityOf(form) === a.value ? form : { ...form, ...identityFields(a.value, a.originalVmName) };
    case 'attachTo':
      return { ...form, attachToVmId: a.value || null };
    case 'disk': {
      const prev = form.disks[a.device] ?? DEFAULT_DISK;
      return { ...form, disks: { ...form.disks, [a.device]: { ...prev, ...a.change } } };
    }
    default:
      return form;
  }
}

export function diskChoice(form: RestoreForm, device: string): DiskChoice {
  return form.disks[device] ?? DEFAULT_DISK;
}

/** Whether the restore brings back a VM: asked for, and the point holds a definition. */
export function restoresVm(form: RestoreForm, ovfAvailable: boolean): boolean {
  return form.fromOvf && ovfAvailable;
}

/**
 * The body of `POST …/restore/plan` and `POST …/restore` for the form and the point's disks
 * (devices of other points are left out). Defaults are left to the service: a disk name only
 * when typed, a cluster or domain only when chosen, so the plan's defaults follow the VM name.
 */
export function restoreBody(form: RestoreForm, devices: readonly string[], ovfAvailable = true): RestoreRequestBody {
  const disks = devices.map((device) => {
    const c = diskChoice(form, device);
    const name = c.name.trim();
    return { device, include: c.include, ...(name ? { name } : {}), ...(c.storageDomainId ? { storageDomainId: c.storageDomainId } : {}) };
  });
  if (restoresVm(form, ovfAvailable)) {
    const vmName = form.vmName.trim();
    return {
      mode: 'vm',
      fromOvf: true,
      ...(vmName ? { vmName } : {}),
      ...(form.clusterId ? { clusterId: form.clusterId } : {}),
      regenerateIds: form.regenerateIds,
      regenerateMacs: form.regenerateMacs,
      useProxy: form.useProxy,
      disks,
    };
  }
  return { mode: 'disks', ...(form.attachToVmId ? { attachToVmId: form.attachToVmId } : {}), useProxy: form.useProxy, disks };
}

/** Codes of the problems the dialog finds itself, before asking the service. */
export type LocalProblemCode = 'VM_NAME_REQUIRED' | 'VM_NAME_INVALID' | 'DISK_NAME_INVALID' | 'NO_DISKS';

/**
 * What is wrong with the form as typed (the service would answer 400 or refuse): the plan is
 * not asked for while there is one of these. Subjects follow the service's: the VM name, a
 * disk's device.
 */
export function localProblems(form: RestoreForm, devices: readonly string[], t: Translate, ovfAvailable = true): RestoreProblem[] {
  const out: RestoreProblem[] = [];
  const err = (code: LocalProblemCode, message: string, subject?: string): void => void out.push({ severity: 'error', code, message, ...(subject !== undefined ? { subject } : {}) });
  if (restoresVm(form, ovfAvailable)) {
    const name = form.vmName.trim();
    if (!name) err('VM_NAME_REQUIRED', t('problemVmNameRequired'), '');
    else if (!NAME_RE.test(name) || name.length > NAME_MAX) err('VM_NAME_INVALID', t('problemVmNameInvalid', { name }), name);
  }
  for (const device of devices) {
    const c = diskChoice(form, device);
    const name = c.name.trim();
    if (c.include && name && (!NAME_RE.test(name) || name.length > NAME_MAX)) err('DISK_NAME_INVALID', t('problemDiskNameInvalid', { name }), device);
  }
  if (devices.length > 0 && devices.every((d) => !diskChoice(form, d).include)) err('NO_DISKS', t('problemNoDisks'));
  return out;
}

export interface ProblemGroups {
  errors: RestoreProblem[];
  warnings: RestoreProblem[];
  /** Shown at the VM name field. */
  vmName: RestoreProblem[];
  cluster: RestoreProblem[];
  attachTo: RestoreProblem[];
  /** At the identity choice: the original VM (or one of its disks) still exists. */
  ids: RestoreProblem[];
  /** At "regenerate MAC addresses": a kept MAC is in use. */
  macs: RestoreProblem[];
  /** Shown in a disk's row: about the disk itself, or the domain it is planned on. */
  byDisk: Record<string, RestoreProblem[]>;
}

const VM_NAME_CODES = new Set(['VM_NAME_EXISTS', 'VM_NAME_REQUIRED', 'VM_NAME_INVALID']);

/**
 * Sorts problems for the dialog: errors and warnings (errors first, each once), and each
 * problem also at the field it is about. A problem's subject is a disk device, a storage
 * domain id (every disk planned on that domain shows it), a VM name, a NIC name…
 */
export function groupProblems(problems: readonly RestoreProblem[], disks: { devices: readonly string[]; domainOf?: Readonly<Record<string, string>> }): ProblemGroups {
  const g: ProblemGroups = { errors: [], warnings: [], vmName: [], cluster: [], attachTo: [], ids: [], macs: [], byDisk: {} };
  const seen = new Set<string>();
  const toDisk = (device: string, p: RestoreProblem): void => {
    (g.byDisk[device] ??= []).push(p);
  };
  for (const p of problems) {
    const key = `${p.severity}|${p.code}|${p.subject ?? ''}|${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    (p.severity === 'error' ? g.errors : g.warnings).push(p);
    if (VM_NAME_CODES.has(p.code)) g.vmName.push(p);
    else if (p.code === 'CLUSTER_NOT_FOUND') g.cluster.push(p);
    else if (p.code === 'TARGET_VM_NOT_FOUND') g.attachTo.push(p);
    else if (p.code === 'VM_ID_EXISTS') g.ids.push(p);
    else if (p.code === 'MAC_IN_USE') g.macs.push(p);
    else if (p.subject !== undefined) {
      if (disks.devices.includes(p.subject)) toDisk(p.subject, p);
      else for (const d of disks.devices) if (disks.domainOf?.[d] === p.subject) toDisk(d, p);
    }
  }
  return g;
}

/** device → planned storage domain id, for the problems about a domain. */
export function plannedDomains(plan: Pick<RestorePlanView, 'disks'> | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of plan?.disks ?? []) out[d.device] = d.storageDomainId;
  return out;
}

/** Where the plan stands for the form as it is now. */
export type PlanStatus = 'waiting' | 'planning' | 'ready' | 'invalid' | 'failed';

export interface SubmitGate {
  planStatus: PlanStatus;
  /** The plan shown was made for the form as it is now. */
  planCurrent: boolean;
  planOk: boolean;
  /** A restore started from this dialog is queued or running. */
  jobActive: boolean;
}

/** Restore may be pressed only for a current plan without errors, and not while the restore it
 *  started runs (a start still in flight is the button's own busy: hooks/useAction). */
export function canSubmit(s: SubmitGate): boolean {
  return s.planStatus === 'ready' && s.planCurrent && s.planOk && !s.jobActive;
}

/** The problems a 409 RESTORE_REFUSED carries in `details.problems`, or none. */
export function refusedProblems(details: unknown): RestoreProblem[] {
  if (typeof details !== 'object' || details === null) return [];
  const list = (details as { problems?: unknown }).problems;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (p): p is RestoreProblem =>
      typeof p === 'object' && p !== null && ((p as RestoreProblem).severity === 'error' || (p as RestoreProblem).severity === 'warning') && typeof (p as RestoreProblem).code === 'string' && typeof (p as RestoreProblem).message === 'string',
  );
}

/** A restore the service refused (409): its problems, for the body (`key`) and plan they were about. */
export interface Refusal<P> {
  key: string;
  problems: RestoreProblem[];
  plan: P | null;
}

/**
 * The problems the dialog shows, and whether the plan lets Restore be pressed: the form's own
 * problems first (the plan is not asked for then); else a refusal of the body as it is now,
 * standing until a newer plan arrives; else the plan's.
 */
export function shownProblems<P extends Pick<RestorePlanView, 'ok' | 'problems'>>(s: { local: RestoreProblem[]; refused: Refusal<P> | null; bodyKey: string; plan: P | null }): { problems: RestoreProblem[]; planOk: boolean } {
  const refusedNow = s.refused && s.refused.key === s.bodyKey && s.refused.plan === s.plan ? s.refused.problems : null;
  const problems = s.local.length > 0 ? s.local : (refusedNow ?? s.plan?.problems ?? []);
  return { problems, planOk: s.local.length === 0 && refusedNow === null && (s.plan?.ok ?? false) };
}
