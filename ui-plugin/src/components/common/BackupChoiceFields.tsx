// The method and consistency selects of Backup now and of the policy form (values and texts: logic/backupChoices.ts).
import { FormGroup, FormHelperText, FormSelect, FormSelectOption, HelperText, HelperTextItem } from '@patternfly/react-core';
import type { ConsistencyMode } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { CONSISTENCY_CHOICES, isConsistencyMode, isMethodChoice, METHOD_CHOICES, type MethodChoice } from '../../logic/backupChoices';

interface FieldProps<T> {
  /** The select's id (`<id>-error` holds an error). */
  id: string;
  value: T;
  onChange: (v: T) => void;
  /** The service's refusal of this field, shown under it. */
  error?: string | undefined;
}

function Help({ id, error, help }: { id: string; error: string | undefined; help: string }) {
  return (
    <FormHelperText>
      <HelperText>
        {error ? (
          <HelperTextItem variant="error">
            <span id={`${id}-error`}>{error}</span>
          </HelperTextItem>
        ) : (
          <HelperTextItem>{help}</HelperTextItem>
        )}
      </HelperText>
    </FormHelperText>
  );
}

/** Service default / Automatic / QEMU monitor on the host / Engine backup API. */
export function MethodSelect({ id, value, onChange, error }: FieldProps<MethodChoice>) {
  const { t } = useTexts();
  return (
    <FormGroup label={t('fieldMethod')} fieldId={id}>
      <FormSelect id={id} value={value} onChange={(_e, v) => isMethodChoice(v) && onChange(v)} validated={error ? 'error' : 'default'} aria-label={t('fieldMethod')}>
        {METHOD_CHOICES.map((c) => (
          <FormSelectOption key={c.value || 'default'} value={c.value} label={t(c.label)} />
        ))}
      </FormSelect>
      <Help id={id} error={error} help={t('fieldMethodHelp')} />
    </FormGroup>
  );
}

/** Automatic / Require filesystem-consistent / Crash-consistent. */
export function ConsistencySelect({ id, value, onChange, error }: FieldProps<ConsistencyMode>) {
  const { t } = useTexts();
  return (
    <FormGroup label={t('fieldConsistency')} fieldId={id}>
      <FormSelect id={id} value={value} onChange={(_e, v) => isConsistencyMode(v) && onChange(v)} validated={error ? 'error' : 'default'} aria-label={t('fieldConsistency')}>
        {CONSISTENCY_CHOICES.map((c) => (
          <FormSelectOption key={c.value} value={c.value} label={t(c.label)} />
        ))}
      </FormSelect>
      <Help id={id} error={error} help={t('fieldConsistencyHelp')} />
    </FormGroup>
  );
}
