import { AppError } from '../errors';
import type { VmIdentity } from '../repository';

/** A VM named on the command line; its key must be usable as a file name in the repository. */
export function vmFromName(name: string): VmIdentity {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
    throw new AppError('INVALID_ARGUMENT', `vm name '${name}' must be 1-128 characters of letters, digits, '.', '_' or '-'`);
  }
  return { key: name, name };
}
