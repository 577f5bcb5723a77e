// What a content page needs of WebAdmin (token, locale, config, toasts, dialogs, navigation) over pluginApi.
import { FALLBACK_PLACE, type RestoreDialogOptions } from '../constants';
import { vmSearch } from '../logic/search';
import { serviceUrlFromConfig, type ServiceUrlResult } from '../logic/serviceConfig';
import type { Translate } from '../intl/messages';
import { openRestoreDialog } from './dialogs';
import { getPluginApi, logError } from './pluginApi';
import type { Severity } from './pluginApiTypes';

/**
 * What a content page (place, tab, dialog iframe) needs from WebAdmin, read through the same
 * pluginApi object as the host page. Only this folder touches pluginApi.
 */
export interface PageBridge {
  // functions as properties, not methods: they close over pluginApi and are handed around unbound
  /** WebAdmin's SSO token, read at each use (WebAdmin may renew it). */
  token: () => string;
  locale: string;
  userName: string;
  service: ServiceUrlResult;
  toast: (severity: Severity, message: string) => void;
  closeDialog: (token: string) => void;
  /** The Restore… dialog of a VM, opened on one of its points (`deleted`: a VM the engine no longer has). */
  openRestore: (vm: { id: string; name: string }, pointId: string, t: Translate, opts?: RestoreDialogOptions) => void;
  /** WebAdmin's VM list searched for one VM by name (what a restore created), the dialog closed. */
  showVm: (name: string, dialogToken: string) => void;
}

/** WebAdmin's VM list (the place FALLBACK_PLACE names). */
const VMS_PLACE = FALLBACK_PLACE;

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
    openRestore: (vm, pointId, t, opts) => {
      try {
        openRestoreDialog(api, t, vm, pointId, opts);
      } catch (err) {
        logError('cannot open the restore dialog', err);
      }
    },
    showVm: (name, dialogToken) => {
      try {
        api.revealPlace(VMS_PLACE);
        api.setSearchString?.(vmSearch(name));
        api.closeDialog(dialogToken);
      } catch (err) {
        logError('cannot show the vm', err);
      }
    },
  };
}
