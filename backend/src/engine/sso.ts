import { AppError } from '../errors';
import type { EngineTransport, HttpResponse } from './http';
import { isObject } from './parse/fields';

/**
 * Engine SSO (reference ovirt-api.md §1.2, ovirt-ui-plugin.md §5): the OAuth2 password grant
 * for the service account, and the token revoke the Python SDK does on close. The password
 * never appears in a message, a detail or a cause.
 */

/** Mandatory for REST API tokens (reference §1.2). */
export const API_SCOPE = 'ovirt-app-api';

export interface SsoToken {
  accessToken: string;
}

/** SSO answers errors as `{"error": code, "error_description": msg}` or, for pure
 *  `ovirt-app-api` logins, `{"error_code": code, "error": msg}` (ovirt-ui-plugin.md §5.1). */
export function readSsoError(body: unknown): { code: string; message: string } | undefined {
  if (!isObject(body)) return undefined;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  if (str(body.error_code)) return { code: str(body.error_code), message: str(body.error) };
  if (str(body.error)) return { code: str(body.error), message: str(body.error_description) };
  return undefined;
}

export async function passwordGrant(
  transport: EngineTransport,
  baseUrl: string,
  creds: { user: string; password: string },
  signal: AbortSignal,
): Promise<SsoToken> {
  const url = new URL(`${baseUrl}/sso/oauth/token`);
  const form = new URLSearchParams({ grant_type: 'password', scope: API_SCOPE, username: creds.user, password: creds.password });
  let res: HttpResponse;
  try {
    res = await transport.send({
      method: 'POST',
      url,
      // SSO requires this Accept header exactly (ovirt-ui-plugin.md §5.1).
      headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      signal,
    });
  } catch (err) {
    if (err instanceof AppError && err.code !== 'ENGINE_TIMEOUT' && err.code !== 'ENGINE_ABORTED') {
      throw new AppError(err.code, `engine login of ${creds.user} failed - ${err.message}`, { cause: err, details: err.details });
    }
    throw err;
  }
  let body: unknown;
  try {
    body = res.body.trim() === '' ? undefined : JSON.parse(res.body);
  } catch {
    body = undefined;
  }
  const ssoError = readSsoError(body);
  const details = { status: res.status, method: 'POST', path: url.pathname, user: creds.user };
  if (ssoError) {
    // invalid_grant = wrong user/password; access_denied / unauthorized_client = not allowed.
    // server_error and the rest still mean "no login", named as such with the engine's words.
    const said = ssoError.message ? `${ssoError.code}: ${ssoError.message}` : ssoError.code;
    throw new AppError('ENGINE_AUTH_FAILED', `engine refused the login of ${creds.user} - ${said}`, {
      details: { ...details, reason: ssoError.code, detail: ssoError.message },
    });
  }
  if (res.status < 200 || res.status >= 300) {
    const code = res.status === 401 || res.status === 403 ? 'ENGINE_AUTH_FAILED' : 'ENGINE_HTTP_ERROR';
    throw new AppError(code, `engine login of ${creds.user} failed with ${res.status} ${res.statusText}`.trim(), { details });
  }
  const token = isObject(body) && typeof body.access_token === 'string' ? body.access_token : '';
  if (token === '') {
    throw new AppError('ENGINE_PROTOCOL_ERROR', `engine login of ${creds.user} answered ${res.status} without an access token`, { details });
  }
  return { accessToken: token };
}

/** Ends a service-account token (what the Python SDK does on close). Never for a user's token:
 *  that would log the admin out of WebAdmin (ovirt-ui-plugin.md §5.4). */
export async function revokeToken(transport: EngineTransport, baseUrl: string, token: string, signal: AbortSignal): Promise<void> {
  const url = new URL(`${baseUrl}/services/sso-logout`);
  const res = await transport.send({
    method: 'POST',
    url,
    headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ scope: API_SCOPE, token }).toString(),
    signal,
  });
  if (res.status >= 400) {
    throw new AppError('ENGINE_HTTP_ERROR', `engine logout failed with ${res.status} ${res.statusText}`.trim(), {
      details: { status: res.status, method: 'POST', path: url.pathname },
    });
  }
}
