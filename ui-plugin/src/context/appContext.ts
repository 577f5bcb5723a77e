/**
 * The page's React context: the PageContext a content page was wired with (context/pageContext.ts),
 * provided once by entries/mountPage.tsx. Hooks read all of it through useApp(); components read
 * only what rendering needs through useTexts(), so the backup client, the event stream and
 * WebAdmin's bridge are reached from hooks alone (eslint.config.js enforces it).
 */
import { createContext, useContext, useMemo } from 'react';
import type { Translate } from '../intl/messages';
import { errorText } from '../logic/errorText';
import type { PageContext } from './pageContext';

export const AppContext = createContext<PageContext | null>(null);

/** The whole page context: for hooks (fetching, subscriptions, WebAdmin actions). */
export function useApp(): PageContext {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error('useApp outside AppContext');
  return ctx;
}

export interface Texts {
  t: Translate;
  /** The user's WebAdmin locale, for numbers and dates. */
  locale: string;
  /** A load or action failure in words a WebAdmin user can act on (names the service URL when unreachable). */
  errorText: (err: unknown) => string;
}

/** What rendering needs of the page: texts, the locale, error sentences. */
export function useTexts(): Texts {
  const { t, locale, serviceUrl } = useApp();
  return useMemo(() => ({ t, locale, errorText: (err: unknown) => errorText(err, t, serviceUrl) }), [t, locale, serviceUrl]);
}
