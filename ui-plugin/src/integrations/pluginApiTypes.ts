/**
 * The WebAdmin plugin API as the engine implements it (reference/ovirt-ui-plugin.md §2.10,
 * condensed from PluginManager.java). Only integrations/ may use these.
 */
export interface EntityObject {
  id: string;
  [k: string]: string | boolean | undefined;
}

type BtnFn<R> = (selected: EntityObject[], main?: EntityObject) => R;

export interface ActionButton {
  onClick?: BtnFn<void>;
  /** Must return a real boolean, otherwise WebAdmin uses the default (true). */
  isEnabled?: BtnFn<boolean>;
  isAccessible?: BtnFn<boolean>;
  index?: number;
  moreMenu?: boolean;
  id?: string;
}

export interface PlaceOptions {
  priority?: number;
  /** Accepted, never read by WebAdmin (§2.3 quirk). */
  defaultPlace?: boolean;
  searchPrefix?: string;
  icon?: string;
}

export interface DialogOptions {
  buttons?: Array<{ label?: string; onClick?: () => void }>;
  closeIconVisible?: boolean;
  closeOnEscKey?: boolean;
}

export type Severity = 'info' | 'success' | 'warning' | 'danger';

export interface PluginEventHandlers {
  UiInit?: () => void;
  UserLogin?: (userName: string, userId: string) => void;
  UserLogout?: () => void;
  VirtualMachineSelectionChange?: (items: EntityObject[]) => void;
  MessageReceived?: (data: unknown, source: Window) => void;
}

export interface OvirtPluginApi {
  register(h: PluginEventHandlers): void;
  options(o: { allowedMessageOrigins?: string | string[] }): void;
  ready(): void;
  configObject(): Record<string, unknown> | undefined;
  loginUserName(): string | undefined;
  loginUserId(): string | undefined;
  ssoToken(): string | undefined;
  engineBaseUrl(): string | undefined;
  currentLocale(): string | undefined;
  currentPlace(): string | undefined;
  addPrimaryMenuPlace(label: string, token: string, url: string, o?: PlaceOptions): void;
  addDetailPlace(entity: string, label: string, token: string, url: string, o?: PlaceOptions): void;
  setPlaceContentUrl(token: string, url: string): void;
  setPlaceAccessible(token: string, on: boolean): void;
  setPlaceUnloadHandler(token: string, fn: () => void): void;
  addMenuPlaceActionButton(entity: string, label: string, b?: ActionButton): void;
  showDialog(title: string, dialogToken: string, url: string, width: string, height: string, o?: DialogOptions): void;
  setDialogContentUrl(dialogToken: string, url: string): void;
  closeDialog(dialogToken: string): void;
  showAlert(t: Severity, msg: string, o?: { autoHideMs?: number }): void;
  showToast(t: Severity, msg: string): void;
  revealPlace(token: string): void;
  /** Applies to the active list, e.g. `Vms: name = web01` (§2.6). */
  setSearchString?(search: string): void;
  logger?(): { info(m: string): void; warning(m: string): void; severe(m: string): void } | undefined;
  reportFatalError?(m: string): void;
}

declare global {
  interface Window {
    pluginApi?: (name: string) => OvirtPluginApi;
  }
}
