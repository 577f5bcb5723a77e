/**
 * What went wrong talking to the backup service, classified for the page: `unreachable` (no
 * answer at all: stopped, wrong URL, CORS, TLS), `unauthorized` (the portal's token was
 * refused), and the HTTP classes of the API's `{error:{code,message}}` answers.
 */
export type ServiceErrorKind = 'unreachable' | 'unauthorized' | 'forbidden' | 'not-found' | 'conflict' | 'bad-request' | 'server' | 'config';

export class ServiceError extends Error {
  constructor(
    readonly kind: ServiceErrorKind,
    message: string,
    readonly status: number | null = null,
    readonly code: string | null = null,
    /** The API error's `details` (a refused restore's `problems`…), as sent. */
    readonly details: unknown = null,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export function kindOfStatus(status: number): ServiceErrorKind {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status >= 500) return 'server';
  return 'bad-request';
}
