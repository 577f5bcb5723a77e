// A PatternFly button bound to a hook's ActionState: spinner and disabled while its call runs.
// Every button that starts something on the service renders through here, so what an action
// may add (a reason it is not allowed, say) is drawn in one place.
import { Button, type ButtonProps } from '@patternfly/react-core';
import type { ActionState } from '../../hooks/useAction';

export function ActionButton({ action, ...props }: { action: ActionState } & Omit<ButtonProps, 'action' | 'onClick' | 'isLoading' | 'isDisabled'>) {
  return <Button {...props} isLoading={action.busy} isDisabled={action.busy} onClick={action.run} />;
}
