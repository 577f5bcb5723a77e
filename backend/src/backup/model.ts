/**
 * What the next backup of a disk will be, as the VM list forecasts it (chainForecast.ts).
 * Browser-safe types: the UI plugin reads them through api/contract.ts with `import type`.
 */
import type { FullReason } from '../repository/model';

export type ChainState = 'ok' | 'will-be-full';

export interface DiskChainHealth {
  diskId: string;
  alias: string;
  state: ChainState;
  /** Why the next backup of this disk will be full; null when `ok`. */
  reason: FullReason | 'excluded' | null;
  /** Excluded disks (`backup=0` in their description) are never backed up. */
  excluded: boolean;
}
