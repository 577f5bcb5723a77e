// A PatternFly button bound to a hook's ActionState: spinner and disabled while its call runs,
// and, when the user may not do it, disabled with the reason as its tooltip. Every button that
// calls the service renders through here, so busy and the reason are drawn in one place.
import { Button, Tooltip, type ButtonProps } from '@patternfly/react-core';
import type { ActionState } from '../../hooks/useAction';

/**
 * A disabled button says why: `isAriaDisabled` keeps it focusable and hoverable (a plain
 * `disabled` button gets no pointer events, so no tooltip), PatternFly ignores its clicks, and
 * the tooltip (`<id>-reason`) shows on hover and on keyboard focus. A blocked action (the page
 * shows why, e.g. the restore plan's errors above the button) is aria-disabled without one.
 */
export function ActionButton({ action, ...props }: { action: ActionState } & Omit<ButtonProps, 'action' | 'onClick' | 'isLoading' | 'isDisabled' | 'isAriaDisabled'>) {
  const reason = action.disabledReason;
  if (!reason) return <Button {...props} isLoading={action.busy} isDisabled={action.busy && !action.blocked} isAriaDisabled={action.blocked === true} onClick={action.run} />;
  return (
    <Tooltip content={reason} id={props.id ? `${props.id}-reason` : undefined}>
      <Button {...props} isAriaDisabled data-disabled-reason={reason} />
    </Tooltip>
  );
}
