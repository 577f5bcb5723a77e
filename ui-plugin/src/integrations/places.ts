// The Backup place and the VMs' Backups tab in WebAdmin, and keeping WebAdmin's landing page its own.
import { FALLBACK_PLACE, PAGES, TOKENS, VM_ENTITY } from '../constants';
import type { Translate } from '../intl/messages';
import { guard, logError } from './pluginApi';
import type { OvirtPluginApi } from './pluginApiTypes';

function tokenOf(hash: string): string {
  return decodeURIComponent(hash.replace(/^#/, '')).split(/[;?]/)[0] ?? '';
}

/**
 * The Backup primary place and the VMs' Backups tab.
 *
 * Quirk (reference §2.3): addPrimaryMenuPlace makes its token WebAdmin's default place,
 * whatever `defaultPlace` says, so WebAdmin would land on Backup whenever a URL names no place.
 * We keep the place WebAdmin had landed on before our UiInit (`landing`, read while LOADING),
 * go back to it if the add moved the view, and send default reveals (an empty token turning into
 * ours) back there too. lazyLoad stays true so the first landing after login is never ours.
 */
export function addPlaces(api: OvirtPluginApi, t: Translate, landing: string): void {
  api.addPrimaryMenuPlace(t('pluginPlaceLabel'), TOKENS.place, PAGES.place, { priority: 10, icon: 'fa-archive', defaultPlace: false });
  api.addDetailPlace(VM_ENTITY, t('vmTabLabel'), TOKENS.vmTab, PAGES.vmTab, { priority: 50 });

  const home = landing && landing !== TOKENS.place ? landing : FALLBACK_PLACE;
  if (api.currentPlace() === TOKENS.place && landing !== TOKENS.place) api.revealPlace(home);
  try {
    const top = window.top;
    if (!top) return;
    top.addEventListener(
      'hashchange',
      guard(
        'default place guard',
        (ev: HashChangeEvent) => {
          const from = tokenOf(new URL(ev.oldURL).hash);
          const to = tokenOf(new URL(ev.newURL).hash);
          if (to === TOKENS.place && from === '') api.revealPlace(home);
        },
        undefined,
      ),
    );
  } catch (err) {
    logError('cannot watch WebAdmin navigation', err);
  }
}

/**
 * The tab's URL carries no VM (reference §2.3): the selection handler points the tab at the
 * selected VM. Several or no VMs → the tab asks for one.
 */
export function pointVmTab(api: OvirtPluginApi, vm: { id: string; name: string } | null): void {
  const url = vm ? `${PAGES.vmTab}?vmId=${encodeURIComponent(vm.id)}&vmName=${encodeURIComponent(vm.name)}` : PAGES.vmTab;
  api.setPlaceContentUrl(TOKENS.vmTab, url);
}
