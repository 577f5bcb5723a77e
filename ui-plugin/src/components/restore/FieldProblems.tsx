// The plan's problems about one field of the Restore… dialog, under that field (the VM name, the
// cluster, a disk's storage domain …): errors and warnings, each with its code for tests.
import { FormHelperText, HelperText, HelperTextItem } from '@patternfly/react-core';
import type { RestoreProblem } from '../../../../backend/src/api/contract';

/** Nothing when there is no problem; `id` names the list (`aria-describedby` of the field). */
export function FieldProblems({ problems, id }: { problems: RestoreProblem[]; id?: string }) {
  if (problems.length === 0) return null;
  return (
    <FormHelperText>
      <HelperText id={id}>
        {problems.map((p, i) => (
          <HelperTextItem key={`${p.code}-${i}`} variant={p.severity === 'error' ? 'error' : 'warning'} data-code={p.code}>
            {p.message}
          </HelperTextItem>
        ))}
      </HelperText>
    </FormHelperText>
  );
}
