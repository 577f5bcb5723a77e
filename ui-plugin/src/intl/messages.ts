/**
 * Every text the plugin shows, ready for translation, and the one `t()` over them. The English
 * texts are split by area (intl/en-US/: access, common, files, jobs, place, policies, restore; each key in
 * exactly one); a translation is a `Messages` catalog (the compiler wants every key) with the
 * English text's `{name}` placeholders (messages.test checks them), added to `catalogs`. WebAdmin's locale comes from
 * `currentLocale()` (e.g. `en-US`, `fr-FR`); unknown locales fall back to English text while
 * numbers and dates still follow the user's locale.
 */
import { access } from './en-US/access';
import { common } from './en-US/common';
import { files } from './en-US/files';
import { jobs } from './en-US/jobs';
import { place } from './en-US/place';
import { policies } from './en-US/policies';
import { restore } from './en-US/restore';

/** The English texts by area. */
export const AREAS = { access, common, files, jobs, place, policies, restore } as const;

const enUS = { ...access, ...common, ...files, ...jobs, ...place, ...policies, ...restore };

export type MessageKey = keyof typeof enUS;
export type Messages = Record<MessageKey, string>;

const catalogs: Record<string, Messages> = { 'en-US': enUS };

/** The catalog for a WebAdmin locale: exact match, then language, then English. */
export function messagesFor(locale: string | undefined): Messages {
  const loc = (locale ?? 'en-US').replace('_', '-');
  const exact = catalogs[loc];
  if (exact) return exact;
  const lang = loc.split('-')[0];
  const byLang = Object.keys(catalogs).find((k) => k.split('-')[0] === lang);
  return (byLang && catalogs[byLang]) || enUS;
}

export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

export function translator(messages: Messages): Translate {
  return (key, params) => {
    const text = messages[key] ?? key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
  };
}

/** `phaseCopying`, `reasonFirst-backup`, `stateRunning`: keys built from contract values. */
export function keyOf(prefix: 'phase' | 'reason' | 'state' | 'runState' | 'trigger' | 'auditKind', value: string): MessageKey {
  return `${prefix}${value.charAt(0).toUpperCase()}${value.slice(1)}` as MessageKey;
}

export const supportedLocales = Object.keys(catalogs);
