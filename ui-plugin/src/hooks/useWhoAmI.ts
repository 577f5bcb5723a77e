/**
 * Who the page's user is to the backup service (`GET /whoami`): their engine id and name, and
 * whether they are a backup admin. Loaded once per page; null until it answers (or when it
 * cannot: then nothing is denied on a guess, and the service refuses what is not theirs).
 */
import type { WhoAmI } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { useLoader } from './useLoader';

export function useWhoAmI(): WhoAmI | null {
  const { client } = useApp();
  return useLoader(() => client.whoamiGet(), [client]).data;
}
