/**
 * The policy editor's state and its save: the form (logic/policyForm.ts converts it both
 * ways), the service's refusals mapped to the field they name, the saved policy's next runs
 * and warnings, and a version bumped on every change (a retention preview of older values
 * shows as stale).
 */
import { useEffect, useMemo, useState } from 'react';
import type { Policy, PolicyDetail, PolicyWarning } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { errorReason } from '../logic/errorText';
import type { Caller } from '../logic/access';
import { useAction, type ActionState } from './useAction';
import { browserTimeZone, emptyPolicyForm, fieldError, formToPolicy, policyToForm, restrictedPolicyForm, timeZones, type PolicyField, type PolicyForm } from '../logic/policyForm';

export type PolicyErrors = Partial<Record<PolicyField, string>>;

export interface PolicyEditor {
  form: PolicyForm;
  set: <K extends keyof PolicyForm>(key: K, value: PolicyForm[K]) => void;
  /** The service's refusal, at the field it names. */
  errors: PolicyErrors;
  /** A refusal that names no field, as a sentence. */
  general: string | null;
  save: ActionState;
  /** The policy as the service has it (next runs, next verify); null for a new one until saved. */
  detail: PolicyDetail | null;
  /** Saved, and not changed since. */
  savedNow: boolean;
  warnings: PolicyWarning[];
  formVersion: number;
  /** The zones to offer (the form's own among them). */
  zones: string[];
  /** The name to title an existing policy's editor with; null while creating one. */
  editingName: string | null;
}

/** `policy` null: create a new policy (after the first save the editor edits it). A user who is
 *  not a backup admin starts from what they may save (chosen VMs, every point kept, no lock). */
export function usePolicyEditor(policy: Policy | null, onSaved: (policy: PolicyDetail) => void, me: Caller): PolicyEditor {
  const { client, t, bridge } = useApp();
  const [form, setForm] = useState<PolicyForm>(() => {
    if (policy) return policyToForm(policy);
    const empty = emptyPolicyForm(browserTimeZone());
    return me && !me.backupAdmin ? restrictedPolicyForm(empty) : empty;
  });
  const [policyId, setPolicyId] = useState<string | null>(policy?.id ?? null);
  const [errors, setErrors] = useState<PolicyErrors>({});
  const [general, setGeneral] = useState<string | null>(null);
  const [detail, setDetail] = useState<PolicyDetail | null>(null);
  const [savedNow, setSavedNow] = useState(false);
  const [warnings, setWarnings] = useState<PolicyWarning[]>([]);
  const [formVersion, setFormVersion] = useState(0);
  const zones = useMemo(() => timeZones(form.timeZone), [form.timeZone]);

  useEffect(() => {
    if (!policy) return;
    let live = true;
    client.policyGet(policy.id).then(
      (d) => live && setDetail(d),
      () => undefined, // the next runs are a preview: the form works without them
    );
    return () => {
      live = false;
    };
  }, [client, policy]);

  const set = <K extends keyof PolicyForm>(key: K, value: PolicyForm[K]): void => {
    setForm((f) => ({ ...f, [key]: value }));
    setSavedNow(false);
    setFormVersion((v) => v + 1);
  };

  const save = useAction(
    () => {
      setGeneral(null);
      setErrors({});
      const body = formToPolicy(form);
      return policyId ? client.policyUpdate(policyId, body) : client.policyCreate(body);
    },
    (res) => {
      setPolicyId(res.policy.id);
      setDetail(res.policy);
      setWarnings(res.warnings);
      setSavedNow(true);
      bridge.toast('success', t('policySaved', { name: res.policy.name }));
      onSaved(res.policy);
    },
    (err) => {
      const msg = errorReason(err);
      const fe = (err as { kind?: string }).kind === 'bad-request' ? fieldError(msg) : null;
      if (fe) setErrors({ [fe.field]: fe.message });
      else setGeneral(t('policySaveFailed', { reason: msg }));
    },
  );

  const editingName = policy || policyId ? (detail?.name ?? policy?.name ?? form.name) : null;
  return { form, set, errors, general, save, detail, savedNow, warnings, formVersion, zones, editingName };
}
