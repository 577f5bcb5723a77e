// The policy editor's rendering: the form, its field errors, next runs and retention preview (state and save: hooks/usePolicyEditor.ts).
import {
  Alert,
  Button,
  Checkbox,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  Grid,
  GridItem,
  HelperText,
  HelperTextItem,
  List,
  ListItem,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  Radio,
  Switch,
  TextInput,
} from '@patternfly/react-core';
import type { ReactNode } from 'react';
import type { Policy, PolicyDetail, PolicyWarning, VmSummary } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { usePolicyEditor } from '../../hooks/usePolicyEditor';
import type { MessageKey } from '../../intl/messages';
import { deniedText, policyFieldDenials, policyVmDenial, type Caller } from '../../logic/access';
import { formatDateTime } from '../../logic/format';
import { cronText, type PolicyField } from '../../logic/policyForm';
import { previewRequest } from '../../logic/retentionPreview';
import { ActionButton } from '../common/ActionButton';
import { ConsistencySelect, MethodSelect } from '../common/BackupChoiceFields';
import { RetentionPreviewPanel } from './RetentionPreviewPanel';

interface Props {
  /** null: create a new policy. */
  policy: Policy | null;
  vms: VmSummary[];
  /** Who edits: a user who is not a backup admin may choose VMs only, keep every point and set no lock. */
  me: Caller;
  onClose: () => void;
  onSaved: (policy: PolicyDetail) => void;
}

/** Create or edit a policy (state and save in usePolicyEditor); the service's refusals show at
 *  the field they name; what only a backup admin may set is disabled, its reason under it. */
export function PolicyDialog({ policy, vms, me, onClose, onSaved }: Props) {
  const { t, locale } = useTexts();
  const { form, set, errors, general, save, detail, savedNow, warnings, formVersion, zones, editingName } = usePolicyEditor(policy, onSaved, me);
  const denials = policyFieldDenials(me);
  const denied = { selection: deniedText(t, denials.selection), retention: deniedText(t, denials.retention), lock: deniedText(t, denials.lock) };
  const human = cronText(form.schedule, t, locale);
  const title = editingName !== null ? t('policyEditTitle', { name: editingName }) : t('policyCreateTitle');

  const field = (name: PolicyField, label: string, input: ReactNode, help?: string, required = false): ReactNode => (
    <FormGroup label={label} fieldId={`policy-${fieldIdOf(name)}`} isRequired={required}>
      {input}
      {errors[name] || help ? (
        <FormHelperText>
          <HelperText>
            {errors[name] ? (
              <HelperTextItem variant="error">
                <span id={`policy-${fieldIdOf(name)}-error`}>{errors[name]}</span>
              </HelperTextItem>
            ) : (
              <HelperTextItem>{help}</HelperTextItem>
            )}
          </HelperText>
        </FormHelperText>
      ) : null}
    </FormGroup>
  );
  const numberInput = (name: 'keepLast' | 'daily' | 'weekly' | 'monthly' | 'yearly' | 'lockDays' | 'concurrency' | 'windowDurationMinutes', label: MessageKey, disabled = false): ReactNode =>
    field(
      name,
      t(label),
      <TextInput
        id={`policy-${fieldIdOf(name)}`}
        type="number"
        min={0}
        value={form[name]}
        isDisabled={disabled}
        onChange={(_e, v) => set(name, v)}
        validated={errors[name] ? 'error' : 'default'}
        aria-invalid={Boolean(errors[name])}
      />,
    );

  return (
    <Modal id="policy-dialog" isOpen variant="medium" onClose={onClose} aria-labelledby="policy-dialog-title">
      <ModalHeader title={title} labelId="policy-dialog-title" />
      <ModalBody>
        {general ? <Alert id="policy-error" variant="danger" isInline title={general} /> : null}
        <Form id="policy-form" onSubmit={(e) => e.preventDefault()}>
          {field('name', t('fieldName'), <TextInput id="policy-name" isRequired value={form.name} onChange={(_e, v) => set('name', v)} validated={errors.name ? 'error' : 'default'} aria-invalid={Boolean(errors.name)} />, undefined, true)}
          {field(
            'schedule',
            t('fieldSchedule'),
            <TextInput id="policy-schedule" isRequired value={form.schedule} onChange={(_e, v) => set('schedule', v)} validated={errors.schedule ? 'error' : 'default'} aria-invalid={Boolean(errors.schedule)} aria-describedby="policy-schedule-text" />,
            t('fieldScheduleHelp'),
            true,
          )}
          <div id="policy-schedule-text" aria-live="polite">
            {human ?? ''}
          </div>
          {field(
            'verifySchedule',
            t('fieldVerifySchedule'),
            <TextInput id="policy-verifyschedule" value={form.verifySchedule} placeholder="0 4 * * 0" onChange={(_e, v) => set('verifySchedule', v)} validated={errors.verifySchedule ? 'error' : 'default'} aria-invalid={Boolean(errors.verifySchedule)} aria-describedby="policy-verifyschedule-text" />,
            t('fieldVerifyScheduleHelp'),
          )}
          <div id="policy-verifyschedule-text" aria-live="polite">
            {form.verifySchedule.trim() ? (cronText(form.verifySchedule, t, locale) ?? '') : ''}
            {detail?.nextVerify ? <div id="policy-next-verify">{t('nextVerify', { local: detail.nextVerify.local })}</div> : null}
          </div>
          {field(
            'bootCheck',
            t('fieldBootCheck'),
            <FormSelect id="policy-bootcheck" value={form.bootCheck} onChange={(_e, v) => set('bootCheck', v === 'newest-weekly' ? 'newest-weekly' : 'off')} validated={errors.bootCheck ? 'error' : 'default'} aria-label={t('fieldBootCheck')}>
              <FormSelectOption value="off" label={t('bootCheckOff')} />
              <FormSelectOption value="newest-weekly" label={t('bootCheckNewestWeekly')} />
            </FormSelect>,
            t('fieldBootCheckHelp'),
          )}
          {field(
            'timeZone',
            t('fieldTimeZone'),
            <FormSelect id="policy-timezone" value={form.timeZone} onChange={(_e, v) => set('timeZone', v)} validated={errors.timeZone ? 'error' : 'default'} aria-label={t('fieldTimeZone')}>
              {zones.map((z) => (
                <FormSelectOption key={z} value={z} label={z} />
              ))}
            </FormSelect>,
          )}
          <NextRuns detail={detail} savedNow={savedNow} warnings={warnings} />
          <FormGroup label={t('fieldSelection')} role="radiogroup" fieldId="policy-selection" isInline>
            <Radio id="policy-selection-tag" name="policy-selection" label={t('selectionKindTag')} isChecked={form.selectionKind === 'tag'} isDisabled={Boolean(denied.selection)} onChange={() => set('selectionKind', 'tag')} />
            <Radio id="policy-selection-search" name="policy-selection" label={t('selectionKindSearch')} isChecked={form.selectionKind === 'search'} isDisabled={Boolean(denied.selection)} onChange={() => set('selectionKind', 'search')} />
            <Radio id="policy-selection-vms" name="policy-selection" label={t('selectionKindVms')} isChecked={form.selectionKind === 'vms'} onChange={() => set('selectionKind', 'vms')} />
            {denied.selection ? <Reason id="policy-selection-reason" text={denied.selection} /> : null}
          </FormGroup>
          {errors.selection ? <Alert id="policy-selection-error" variant="danger" isInline isPlain title={errors.selection} /> : null}
          {form.selectionKind === 'tag'
            ? field('tag', t('fieldTag'), <TextInput id="policy-tag" value={form.tag} onChange={(_e, v) => set('tag', v)} validated={errors.tag ? 'error' : 'default'} aria-invalid={Boolean(errors.tag)} />, t('fieldTagHelp'))
            : form.selectionKind === 'search'
              ? field('search', t('fieldSearch'), <TextInput id="policy-search" value={form.search} onChange={(_e, v) => set('search', v)} validated={errors.search ? 'error' : 'default'} aria-invalid={Boolean(errors.search)} />, t('fieldSearchHelp'))
              : field(
                  'vmIds',
                  t('fieldVms'),
                  <div id="policy-vmids" style={{ maxHeight: 160, overflowY: 'auto' }} role="group" aria-label={t('fieldVms')}>
                    {vms.map((v) => {
                      const vmDenied = deniedText(t, policyVmDenial(v, me));
                      return (
                        <Checkbox
                          key={v.id}
                          id={`policy-vm-${v.id}`}
                          label={v.name}
                          aria-label={t('policyVmOf', { vm: v.name })}
                          isChecked={form.vmIds.includes(v.id)}
                          // a VM already in the policy stays removable
                          isDisabled={Boolean(vmDenied) && !form.vmIds.includes(v.id)}
                          description={vmDenied}
                          onChange={(_e, on) => set('vmIds', on ? [...form.vmIds, v.id] : form.vmIds.filter((id) => id !== v.id))}
                        />
                      );
                    })}
                  </div>,
                )}
          <FormGroup label={t('fieldRetention')} role="group" fieldId="policy-retention">
            <Grid hasGutter md={2}>
              <GridItem>{numberInput('keepLast', 'fieldKeepLast', Boolean(denied.retention))}</GridItem>
              <GridItem>{numberInput('daily', 'fieldDaily', Boolean(denied.retention))}</GridItem>
              <GridItem>{numberInput('weekly', 'fieldWeekly', Boolean(denied.retention))}</GridItem>
              <GridItem>{numberInput('monthly', 'fieldMonthly', Boolean(denied.retention))}</GridItem>
              <GridItem>{numberInput('yearly', 'fieldYearly', Boolean(denied.retention))}</GridItem>
            </Grid>
            {denied.retention ? (
              <Reason id="policy-retention-reason" text={denied.retention} />
            ) : (
              <FormHelperText>
                <HelperText>
                  <HelperTextItem>{errors.retention ?? t('fieldRetentionHelp')}</HelperTextItem>
                </HelperText>
              </FormHelperText>
            )}
          </FormGroup>
          <RetentionPreviewPanel request={() => previewRequest(form)} formVersion={formVersion} />
          <Grid hasGutter md={6}>
            <GridItem>
              {numberInput('lockDays', 'fieldLockDays', Boolean(denied.lock))}
              {denied.lock ? <Reason id="policy-lockdays-reason" text={denied.lock} /> : null}
            </GridItem>
            <GridItem>{numberInput('concurrency', 'fieldConcurrency')}</GridItem>
          </Grid>
          <FormGroup label={t('fieldWindow')} role="group" fieldId="policy-window">
            <Switch id="policy-window-enabled" label={t('fieldWindowEnabled')} isChecked={form.windowEnabled} onChange={(_e, on) => set('windowEnabled', on)} />
          </FormGroup>
          {errors.window ? <Alert id="policy-window-error" variant="danger" isInline isPlain title={errors.window} /> : null}
          {form.windowEnabled ? (
            <Grid hasGutter md={6}>
              <GridItem>
                {field('windowStart', t('fieldWindowStart'), <TextInput id="policy-windowstart" placeholder="22:00" value={form.windowStart} onChange={(_e, v) => set('windowStart', v)} validated={errors.windowStart ? 'error' : 'default'} aria-invalid={Boolean(errors.windowStart)} />, t('fieldWindowStartHelp'))}
              </GridItem>
              <GridItem>{numberInput('windowDurationMinutes', 'fieldWindowDuration')}</GridItem>
            </Grid>
          ) : null}
          <Grid hasGutter md={6}>
            <GridItem>
              <MethodSelect id="policy-method" value={form.method} onChange={(v) => set('method', v)} error={errors.method} />
            </GridItem>
            <GridItem>
              <ConsistencySelect id="policy-consistency" value={form.consistency} onChange={(v) => set('consistency', v)} error={errors.consistency} />
            </GridItem>
          </Grid>
          <Switch id="policy-enabled" label={t('fieldEnabled')} isChecked={form.enabled} onChange={(_e, on) => set('enabled', on)} />
        </Form>
      </ModalBody>
      <ModalFooter>
        <ActionButton id="policy-save" variant="primary" action={save}>
          {t('save')}
        </ActionButton>
        <Button id="policy-cancel" variant="link" onClick={onClose}>
          {savedNow ? t('close') : t('cancel')}
        </Button>
      </ModalFooter>
    </Modal>
  );
}

/** Why a field is disabled, under it. */
function Reason({ id, text }: { id: string; text: string }) {
  return (
    <FormHelperText>
      <HelperText>
        <HelperTextItem id={id} variant="indeterminate">
          {text}
        </HelperTextItem>
      </HelperText>
    </FormHelperText>
  );
}

function fieldIdOf(f: PolicyField): string {
  return f === 'timeZone' ? 'timezone' : f.toLowerCase();
}

/** The next runs as the service computes them (in the policy's zone, and in the admin's own). */
function NextRuns({ detail, savedNow, warnings }: { detail: PolicyDetail | null; savedNow: boolean; warnings: PolicyWarning[] }) {
  const { t, locale } = useTexts();
  if (!detail) return null;
  return (
    <div id="policy-next-runs-box" data-saved={savedNow ? 'true' : 'false'}>
      <strong>{savedNow ? t('nextRunsSaved') : t('nextRunsTitle')}</strong>
      {detail.nextRuns.length === 0 ? (
        <div id="policy-next-runs-none">{t('nextRunsNone')}</div>
      ) : (
        <List id="policy-next-runs" isPlain>
          {detail.nextRuns.map((r) => (
            <ListItem key={r.at}>{t('nextRunLocal', { local: r.local, mine: formatDateTime(r.at, locale) })}</ListItem>
          ))}
        </List>
      )}
      {savedNow && warnings.length > 0 ? (
        <Alert id="policy-warnings" variant="warning" isInline isPlain title={t('policyWarnings')}>
          <List>
            {warnings.map((w) => (
              <ListItem key={w.code + w.message}>{w.message}</ListItem>
            ))}
          </List>
        </Alert>
      ) : null}
    </div>
  );
}
