import { createContext, useContext } from 'react';
import type { PageContext } from '../pageContext';

export const AppContext = createContext<PageContext | null>(null);

export function useApp(): PageContext {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error('useApp outside AppContext');
  return ctx;
}
