/**
 * The backup method and consistency a user may choose (Backup now, a policy), their texts, and
 * a point's or a job's method as a label. The values are the contract's (BackupMethod,
 * ConsistencyMode, PointMethod); the plugin keeps its own copy of the lists, as it imports
 * nothing but types from the backend. Pure: no DOM, no React.
 */
import type { BackupMethod, ConsistencyMode, PointMethod, StartBackupRequest } from '../../../backend/src/api/contract';
import type { MessageKey } from '../intl/messages';

/** '' : the service's default (its backup.method), nothing is sent. */
export type MethodChoice = '' | BackupMethod;

export const METHOD_CHOICES: ReadonlyArray<{ value: MethodChoice; label: MessageKey }> = [
  { value: '', label: 'methodDefault' },
  { value: 'auto', label: 'methodAuto' },
  { value: 'qmp', label: 'methodQmp' },
  { value: 'engine', label: 'methodEngine' },
];

export const CONSISTENCY_CHOICES: ReadonlyArray<{ value: ConsistencyMode; label: MessageKey }> = [
  { value: 'auto', label: 'consistencyAuto' },
  { value: 'filesystem', label: 'consistencyRequireFilesystem' },
  { value: 'crash', label: 'consistencyCrashOnly' },
];

export function isMethodChoice(v: string): v is MethodChoice {
  return METHOD_CHOICES.some((c) => c.value === v);
}

export function isConsistencyMode(v: string): v is ConsistencyMode {
  return CONSISTENCY_CHOICES.some((c) => c.value === v);
}

/** Backup now's body: only what differs from a plain backup is sent. */
export function backupNowBody(o: { full: boolean; method: MethodChoice; consistency: ConsistencyMode }): StartBackupRequest {
  return { ...(o.full ? { full: true } : {}), ...(o.method ? { method: o.method } : {}), ...(o.consistency !== 'auto' ? { consistency: o.consistency } : {}) };
}

/** The label of the method that made a point or ran a job; absent (older results): qmp. */
export function pointMethodKey(m: PointMethod | undefined): MessageKey {
  return m === 'engine' ? 'pointMethodEngine' : 'pointMethodQmp';
}
