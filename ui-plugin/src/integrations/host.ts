// The hidden host page: plugin registration and lifecycle, places, buttons (with what the user
// may do to each VM), toasts for finished jobs.
import { API_PREFIX } from '../constants';
import { messagesFor, translator } from '../intl/messages';
import { toSelectedVms } from '../logic/selection';
import { eventsUrl, serviceUrlFromConfig } from '../logic/serviceConfig';
import { createBackupClient, type BackupClient } from '../services/backupClient';
import { EventStream } from '../services/eventStream';
import { addButtons } from './buttons';
import { JobNotifier } from './notifications';
import { addPlaces, pointVmTab } from './places';
import { getPluginApi, guard, logError } from './pluginApi';
import { VmAccessWatch } from './vmAccess';

/**
 * The hidden host page's whole job (reference §1.6): get the API, register the handlers, call
 * ready(). Places and buttons are added in UiInit, when WebAdmin accepts UI calls. Every
 * handler is guarded: one escaping exception would remove the plugin until the next reload.
 */
export function startHost(): void {
  let api;
  try {
    api = getPluginApi();
  } catch (err) {
    logError('not running inside WebAdmin', err);
    return;
  }
  const plugin = api;
  // safe accessors, allowed while LOADING: where WebAdmin landed, and the user's locale
  const landing = guard('currentPlace', () => plugin.currentPlace() ?? '', '')();
  const locale = guard('currentLocale', () => plugin.currentLocale() || 'en-US', 'en-US')();
  const t = translator(messagesFor(locale));
  let notifier: JobNotifier | null = null;
  let access: VmAccessWatch | null = null;

  plugin.register({
    UiInit: guard(
      'UiInit',
      () => {
        const service = serviceUrlFromConfig(plugin.configObject());
        let client: BackupClient | null = null;
        if (service.ok) {
          const token = (): string => plugin.ssoToken() ?? '';
          client = createBackupClient({ serviceUrl: service.url, token });
          notifier = new JobNotifier(plugin, new EventStream({ url: eventsUrl(service.url, API_PREFIX), token }), t, locale);
          access = new VmAccessWatch(client);
          void access.refresh();
        } else {
          logError(service.problem);
        }
        addPlaces(plugin, t, landing);
        addButtons(plugin, t, client, notifier, service.ok ? null : service.problem, access);
        notifier?.start();
      },
      undefined,
    ),
    VirtualMachineSelectionChange: guard(
      'VirtualMachineSelectionChange',
      (items: unknown) => {
        const vms = toSelectedVms(items);
        access?.selected(vms.map((v) => v.id));
        pointVmTab(plugin, vms.length === 1 && vms[0] ? vms[0] : null);
      },
      undefined,
    ),
    UserLogout: guard('UserLogout', () => notifier?.stop(), undefined),
  });
  plugin.ready();
}
