/**
 * Everything a content page uses, wired once per page from WebAdmin's pluginApi (through
 * integrations/bridge.ts): the backup client, the live-event stream, the texts of the user's
 * locale. The pages' composition root; entries/mountPage.tsx provides it as React context.
 */
import { API_PREFIX } from '../constants';
import { pageBridge, type PageBridge } from '../integrations/bridge';
import { messagesFor, translator, type Translate } from '../intl/messages';
import { eventsUrl } from '../logic/serviceConfig';
import { createBackupClient, type BackupClient } from '../services/backupClient';
import { EventStream } from '../services/eventStream';

export interface PageContext {
  bridge: PageBridge;
  client: BackupClient;
  stream: EventStream;
  t: Translate;
  locale: string;
  serviceUrl: string;
}

export type PageSetup = { ok: true; ctx: PageContext } | { ok: false; t: Translate; message: string };

export function setupPage(): PageSetup {
  let bridge: PageBridge;
  try {
    bridge = pageBridge();
  } catch {
    const t = translator(messagesFor(navigator.language));
    return { ok: false, t, message: t('errNotInWebAdmin') };
  }
  const t = translator(messagesFor(bridge.locale));
  if (!bridge.service.ok) return { ok: false, t, message: t('errConfig', { message: bridge.service.problem }) };
  const serviceUrl = bridge.service.url;
  const client = createBackupClient({ serviceUrl, token: bridge.token });
  const stream = new EventStream({ url: eventsUrl(serviceUrl, API_PREFIX), token: bridge.token });
  return { ok: true, ctx: { bridge, client, stream, t, locale: bridge.locale, serviceUrl } };
}

/** Query parameters of the page's own URL (the tab and dialog get the VM through them). */
export function pageParam(name: string): string | null {
  return new URLSearchParams(window.location.search).get(name);
}
