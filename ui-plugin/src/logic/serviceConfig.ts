/**
 * The backup service's address from the plugin config (descriptor `config`, overridden by
 * /etc/ovirt-engine/ui-plugins/olvm-backup-config.json). Returns the origin-plus-path without a
 * trailing slash, or an error text for the page to show.
 */
export type ServiceUrlResult = { ok: true; url: string } | { ok: false; problem: string };

export function serviceUrlFromConfig(config: unknown): ServiceUrlResult {
  const raw = typeof config === 'object' && config !== null ? (config as Record<string, unknown>).serviceUrl : undefined;
  if (typeof raw !== 'string' || raw.trim() === '') return { ok: false, problem: 'serviceUrl is not set in the plugin configuration' };
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return { ok: false, problem: `serviceUrl "${raw}" is not a URL` };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { ok: false, problem: `serviceUrl "${raw}" must be http(s)` };
  return { ok: true, url: `${u.origin}${u.pathname.replace(/\/+$/, '')}` };
}

/** ws(s):// URL of the live-event endpoint under a service URL. */
export function eventsUrl(serviceUrl: string, apiPrefix: string): string {
  return `${serviceUrl.replace(/^http/, 'ws')}${apiPrefix}/events`;
}
