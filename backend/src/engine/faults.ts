import { AppError, type ErrorCode } from '../errors';
import type { HttpResponse } from './http';
import { isObject } from './parse/fields';

/** What the engine said went wrong, whatever shape it said it in. */
export interface EngineFault {
  reason: string;
  detail: string;
}

/**
 * Reads an engine error body. Shapes seen (reference §1.5, ovirt-ui-plugin.md §3):
 * `{"fault": {"reason", "detail"}}`, a bare `{"reason", "detail"}`, a failed action
 * `{"status": "failed", "fault": {...}}`, the XML `<fault><reason/><detail/></fault>` (answers from
 * layers that ignore Accept), and HTML/plain text from the web server in front of the engine.
 */
export function readFault(res: HttpResponse): EngineFault {
  const body = res.body.trim();
  const fallback = res.statusText || `http ${res.status}`;
  if (body === '') return { reason: fallback, detail: '' };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  if (isObject(json)) {
    const f = isObject(json.fault) ? json.fault : json;
    const reason = textOf(f.reason);
    const detail = textOf(f.detail);
    if (reason || detail) return { reason: reason || fallback, detail };
    // SSO-style bodies can reach API paths through proxies: {"error", "error_description"}.
    const error = textOf(json.error);
    if (error) return { reason: error, detail: textOf(json.error_description) };
    return { reason: fallback, detail: clip(body) };
  }
  const xmlReason = /<reason>([\s\S]*?)<\/reason>/.exec(body)?.[1];
  if (xmlReason !== undefined) {
    return { reason: unescapeXml(xmlReason.trim()), detail: unescapeXml((/<detail>([\s\S]*?)<\/detail>/.exec(body)?.[1] ?? '').trim()) };
  }
  return { reason: fallback, detail: clip(stripTags(body)) };
}

/** The coded error for a failed engine request: 401 → auth, 404 → not found, else http error. */
export function faultError(
  res: HttpResponse,
  request: { method: string; path: string },
  opts: { code?: ErrorCode; what?: string } = {},
): AppError {
  const fault = readFault(res);
  const code: ErrorCode = opts.code ?? (res.status === 401 ? 'ENGINE_AUTH_FAILED' : res.status === 404 ? 'ENGINE_NOT_FOUND' : 'ENGINE_HTTP_ERROR');
  const said = fault.detail && fault.detail !== fault.reason ? `${fault.reason}: ${fault.detail}` : fault.reason;
  const what = opts.what ?? `engine ${request.method} ${request.path}`;
  return new AppError(code, `${what} failed with ${res.status} - ${said}`, {
    details: { status: res.status, method: request.method, path: request.path, reason: fault.reason, detail: fault.detail },
  });
}

function textOf(v: unknown): string {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return '';
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 300 ? `${one.slice(0, 300)}…` : one;
}

function stripTags(s: string): string {
  return s.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]+>/g, ' ');
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}
