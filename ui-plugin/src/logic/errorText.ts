// Service errors in words: a sentence for the page's alert, a short reason for toasts.
import type { MessageKey, Translate } from '../intl/messages';

/** The shape of services' ServiceError the pages need (kept structural: logic imports no services). */
export interface ErrorLike {
  kind?: string;
  message: string;
}

const KEYS: Record<string, MessageKey> = {
  unreachable: 'errServiceUnreachable',
  unauthorized: 'errUnauthorized',
  forbidden: 'errForbidden',
  'not-found': 'errNotFound',
  conflict: 'errConflict',
  'bad-request': 'errConflict',
  server: 'errServer',
  config: 'errConfig',
};

/** A translated sentence for an error from the service, naming the service URL when unreachable. */
export function errorText(err: unknown, t: Translate, serviceUrl: string): string {
  // a ServiceError is an Error with a `kind`: read structurally, logic imports no services
  const e: ErrorLike = err instanceof Error ? err : { message: String(err) };
  const key = (e.kind && KEYS[e.kind]) || 'errServer';
  return t(key, { url: serviceUrl, message: e.message });
}

/** Short reason for toasts: the service's own message, without the page-level advice. */
export function errorReason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
