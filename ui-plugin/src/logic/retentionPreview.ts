// The retention preview, pure: the request from the policy form, and each point's fate in words.
import type { RetentionPreview, RetentionPreviewPoint, RetentionPreviewRequest, RetentionRule } from '../../../backend/src/api/contract';
import type { MessageKey, Translate } from '../intl/messages';
import { formatDateTime } from './format';
import { formToPolicy, type PolicyForm } from './policyForm';

/** What the preview asks the service: the form's selection, rules and zone as a save would send them. */
export function previewRequest(form: PolicyForm): RetentionPreviewRequest {
  const p = formToPolicy(form);
  return { selection: p.selection, retention: p.retention, timeZone: p.timeZone };
}

const RULE_KEY: Record<RetentionRule, MessageKey> = { last: 'ruleLast', daily: 'ruleDaily', weekly: 'ruleWeekly', monthly: 'ruleMonthly', yearly: 'ruleYearly' };

/** "kept by daily, weekly" (+ "; locked until …" while locked) / "would be removed" /
 *  "not kept by any rule, but locked until …". */
export function pointFate(p: RetentionPreviewPoint, preview: Pick<RetentionPreview, 'keepsAll' | 'at'>, t: Translate, locale: string): string {
  if (p.action === 'remove') return t('fateRemove');
  const until = p.lockedUntil ? formatDateTime(p.lockedUntil, locale) : '?';
  if (p.action === 'locked') return t('fateLocked', { time: until });
  const kept = preview.keepsAll || p.keptBy.length === 0 ? t('fateKeepAll') : t('fateKeep', { rules: p.keptBy.map((r) => t(RULE_KEY[r])).join(', ') });
  return p.lockedUntil && Date.parse(p.lockedUntil) > Date.parse(preview.at) ? t('fateAlsoLocked', { kept, time: until }) : kept;
}

export function vmCounts(points: RetentionPreviewPoint[]): { keep: number; remove: number; locked: number } {
  const c = { keep: 0, remove: 0, locked: 0 };
  for (const p of points) c[p.action] += 1;
  return c;
}

/** The one-line answer above the per-VM lists. */
export function previewSummary(preview: RetentionPreview, t: Translate): string {
  if (preview.vms.length === 0) return t('retentionPreviewNoVms');
  if (preview.keepsAll) return t('retentionPreviewKeepsAll', { keep: preview.totals.keep });
  return t('retentionPreviewSummary', { ...preview.totals });
}
