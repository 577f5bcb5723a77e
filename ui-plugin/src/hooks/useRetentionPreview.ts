/**
 * "Preview retention": asks the service's dry-run prune for the form's rules on demand (never
 * while typing: it reads every manifest of the selected VMs) and remembers which form version
 * the answer was for, so a preview of older values shows as stale.
 */
import { useState } from 'react';
import type { RetentionPreview, RetentionPreviewRequest } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { useAction, type ActionState } from './useAction';

export interface RetentionPreviewState {
  preview: RetentionPreview | null;
  /** The form changed since the preview shown was asked for. */
  stale: boolean;
  /** Why the last ask failed (no preview is shown then). */
  error: unknown;
  /** The "Preview retention" button: busy while the service answers. */
  ask: ActionState;
}

/** `request` gives the form's selection, rules and zone now; `formVersion` changes with every edit. */
export function useRetentionPreview(request: () => RetentionPreviewRequest, formVersion: number): RetentionPreviewState {
  const { client } = useApp();
  const [preview, setPreview] = useState<{ data: RetentionPreview; version: number } | null>(null);
  const [error, setError] = useState<unknown>(null);

  // the answer is for the form as it was when asked (its version then)
  const ask = useAction(
    () => {
      setError(null);
      const version = formVersion;
      return client.retentionPreview(request()).then((data) => ({ data, version }));
    },
    (answer) => setPreview(answer),
    (err) => {
      setPreview(null);
      setError(err);
    },
  );

  return { preview: preview?.data ?? null, stale: preview !== null && preview.version !== formVersion, error, ask };
}
