import { serviceUrlFromConfig, type ServiceUrlResult } from '../logic/serviceConfig';
import { getPluginApi, logError } from './pluginApi';
import type { Severity } from './pluginApiTypes';

/**
 * What a content page (place, tab, dialog iframe) needs from WebAdmin, read through the same
 * pluginApi object as the host page. Only this folder touches pluginApi.
 */
export interface PageBridge {
  token(): string;
  locale: string;
  userName: string;
  service: ServiceUrlResult;
  toast(severity: Severity, message: string): void;
  closeDialog(token: string): void;
}

export function pageBridge(): PageBridge {
  const api = getPluginApi();
  return {
    token: () => api.ssoToken() ?? '',
    locale: api.currentLocale() || 'en-US',
    userName: api.loginUserName() ?? '',
    service: serviceUrlFromConfig(api.configObject()),
    toast: (severity, message) => {
      try {
        api.showToast(severity, message);
      } catch (err) {
        logError('showToast failed', err);
      }
    },
    closeDialog: (token) => {
      try {
        api.closeDialog(token);
      } catch (err) {
        logError('closeDialog failed', err);
      }
    },
  };
}
