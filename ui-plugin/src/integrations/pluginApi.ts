// Getting WebAdmin's pluginApi object, logging to its ui.log, and guarding callbacks WebAdmin would swallow.
import { PLUGIN_NAME } from '../constants';
import { errorReason } from '../logic/errorText';
import type { OvirtPluginApi } from './pluginApiTypes';

let api: OvirtPluginApi | undefined;

/**
 * The plugin's API object from the WebAdmin window. Every plugin frame (the hidden host page,
 * place and tab iframes, dialogs) is same-origin with WebAdmin and reaches it through
 * `window.top` (as ovirt-engine-ui-extensions does, reference §2).
 */
export function getPluginApi(): OvirtPluginApi {
  if (api) return api;
  let factory: ((name: string) => OvirtPluginApi) | undefined;
  try {
    factory = window.top?.pluginApi;
  } catch {
    factory = undefined; // cross-origin top: not inside WebAdmin
  }
  if (typeof factory !== 'function') throw new Error('this page must run inside the oVirt/OLVM administration portal (no pluginApi)');
  api = factory(PLUGIN_NAME);
  return api;
}

/** Logs through WebAdmin's ui.log when the engine has it (4.4.7+), else the console. */
export function logError(message: string, err?: unknown): void {
  const detail = err === undefined ? message : `${message}: ${errorReason(err)}`;
  try {
    const logger = api?.logger?.();
    if (logger) {
      logger.severe(`[${PLUGIN_NAME}] ${detail}`);
      return;
    }
  } catch {
    // fall through to the console
  }
  console.error(`[${PLUGIN_NAME}] ${detail}`);
}

/**
 * Wraps a WebAdmin callback so no exception escapes into WebAdmin: one escaping exception from
 * an event handler makes WebAdmin remove the plugin for good (reference §1.6).
 */
export function guard<A extends unknown[], R>(what: string, fn: (...args: A) => R, fallback: R): (...args: A) => R {
  return (...args: A): R => {
    try {
      return fn(...args);
    } catch (err) {
      logError(`${what} failed`, err);
      return fallback;
    }
  };
}
