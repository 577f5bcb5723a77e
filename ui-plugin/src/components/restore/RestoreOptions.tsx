// The Restore… dialog's target options: a VM from the OVF (new, or the original under its own
// ids; name, cluster, MACs) or disks only (attached to a VM the user may configure, or not).
import { Checkbox, Form, FormGroup, FormHelperText, FormSelect, FormSelectOption, HelperText, HelperTextItem, Radio, Switch, TextInput } from '@patternfly/react-core';
import type { Dispatch } from 'react';
import type { RestorePlanView } from '../../../../backend/src/api/contract';
import { identityOf, type FormAction, type ProblemGroups, type RestoreForm } from '../../logic/restoreForm';
import { useTexts } from '../../context/appContext';
import { FieldProblems } from './FieldProblems';

interface Props {
  form: RestoreForm;
  dispatch: Dispatch<FormAction>;
  plan: RestorePlanView | null;
  groups: ProblemGroups;
  ovfAvailable: boolean;
  disabled: boolean;
  /** The VM's name in the point: what "under its original ids" brings back. */
  originalName: string;
  /** Set: the user may not restore under the original ids (said under the choice). */
  originalIdsReason: string | undefined;
  /** Why disks may not be attached to a VM (its option is disabled); undefined: they may. */
  attachReason: (vmId: string) => string | undefined;
}

function Help({ text }: { text: string }) {
  return (
    <FormHelperText>
      <HelperText>
        <HelperTextItem>{text}</HelperTextItem>
      </HelperText>
    </FormHelperText>
  );
}

/** Where and how: a VM from the OVF — new, or the original under its own ids — (name, cluster,
 *  MACs) or disks only (attach to). */
export function RestoreOptions({ form, dispatch, plan, groups, ovfAvailable, disabled, originalName, originalIdsReason, attachReason }: Props) {
  const { t } = useTexts();
  const asVm = form.fromOvf && ovfAvailable;
  const targets = plan?.targets;
  const clusterValue = form.clusterId ?? plan?.vm?.clusterId ?? '';
  const originalCluster = plan?.vm && !form.clusterId ? plan.vm.clusterId : null;
  const flag = (f: 'regenerateMacs' | 'useProxy') => (_e: unknown, value: boolean) => dispatch({ type: 'flag', flag: f, value });
  const identity = identityOf(form);
  const nameError = groups.vmName.some((p) => p.severity === 'error');

  return (
    <Form id="restore-options" isHorizontal onSubmit={(e) => e.preventDefault()}>
      <FormGroup fieldId="restore-from-ovf" label={t('restoreTargetTitle')} role="group">
        <Switch
          id="restore-from-ovf"
          label={t('restoreFromOvf')}
          isChecked={asVm}
          isDisabled={disabled || !ovfAvailable}
          onChange={(_e, v) => dispatch({ type: 'fromOvf', value: v })}
          aria-describedby="restore-from-ovf-help"
        />
        <FormHelperText>
          <HelperText id="restore-from-ovf-help">
            <HelperTextItem>{ovfAvailable ? t('restoreFromOvfHelp') : t('restoreOvfMissing')}</HelperTextItem>
          </HelperText>
        </FormHelperText>
      </FormGroup>
      {asVm ? (
        <>
          <FormGroup id="restore-identity-group" fieldId="restore-identity" label={t('restoreIdentity')} role="radiogroup" isStack>
            <Radio
              id="restore-as-new"
              name="restore-identity"
              label={t('restoreAsNew')}
              description={t('restoreAsNewHelp')}
              isChecked={identity === 'new'}
              isDisabled={disabled}
              onChange={() => dispatch({ type: 'identity', value: 'new', originalVmName: originalName })}
            />
            <Radio
              id="restore-as-original"
              name="restore-identity"
              label={t('restoreAsOriginal', { vm: originalName })}
              description={originalIdsReason ?? t('restoreAsOriginalHelp')}
              isChecked={identity === 'original'}
              isDisabled={disabled || (Boolean(originalIdsReason) && identity !== 'original')}
              onChange={() => dispatch({ type: 'identity', value: 'original', originalVmName: originalName })}
            />
            <FieldProblems problems={groups.ids} id="restore-identity-problems" />
          </FormGroup>
          <FormGroup fieldId="restore-vm-name" label={t('restoreVmName')} isRequired>
            <TextInput
              id="restore-vm-name"
              value={form.vmName}
              isRequired
              isDisabled={disabled}
              validated={nameError ? 'error' : 'default'}
              aria-describedby="restore-vm-name-problems"
              onChange={(_e, v) => dispatch({ type: 'vmName', value: v })}
            />
            <FieldProblems problems={groups.vmName} id="restore-vm-name-problems" />
          </FormGroup>
          <FormGroup fieldId="restore-cluster" label={t('restoreCluster')}>
            <FormSelect
              id="restore-cluster"
              value={clusterValue}
              isDisabled={disabled || !targets}
              validated={groups.cluster.length > 0 ? 'error' : 'default'}
              onChange={(_e, v) => dispatch({ type: 'cluster', value: v })}
            >
              {!targets ? <FormSelectOption value="" label={t('loading')} isPlaceholder /> : targets.clusters.length === 0 ? <FormSelectOption value="" label="—" isPlaceholder /> : null}
              {(targets?.clusters ?? []).map((c) => (
                <FormSelectOption key={c.id} value={c.id} label={c.id === originalCluster ? t('restoreClusterDefault', { name: c.name }) : c.name} />
              ))}
            </FormSelect>
            <FieldProblems problems={groups.cluster} />
          </FormGroup>
          <FormGroup fieldId="restore-regenerate-macs" isStack>
            <Checkbox
              id="restore-regenerate-macs"
              label={t('restoreRegenerateMacs')}
              description={t('restoreRegenerateMacsHelp')}
              isChecked={form.regenerateMacs}
              isDisabled={disabled}
              onChange={flag('regenerateMacs')}
            />
            <FieldProblems problems={groups.macs} id="restore-regenerate-macs-problems" />
          </FormGroup>
        </>
      ) : (
        <FormGroup fieldId="restore-attach-vm" label={t('restoreAttachTo')}>
          <FormSelect id="restore-attach-vm" value={form.attachToVmId ?? ''} isDisabled={disabled} onChange={(_e, v) => dispatch({ type: 'attachTo', value: v })}>
            <FormSelectOption value="" label={t('restoreAttachNone')} />
            {(targets?.vms ?? []).map((v) => {
              const denied = attachReason(v.id);
              // a VM the user may not configure stays listed, disabled, so they know why it cannot be chosen
              return <FormSelectOption key={v.id} value={v.id} label={denied ? t('restoreAttachOptionDenied', { vm: v.name }) : v.name} isDisabled={Boolean(denied) && form.attachToVmId !== v.id} />;
            })}
          </FormSelect>
          <FieldProblems problems={groups.attachTo} />
        </FormGroup>
      )}
      <FormGroup fieldId="restore-use-proxy">
        <Checkbox id="restore-use-proxy" label={t('restoreUseProxy')} isChecked={form.useProxy} isDisabled={disabled} onChange={flag('useProxy')} />
        <Help text={t('restoreUseProxyHelp')} />
      </FormGroup>
    </Form>
  );
}
