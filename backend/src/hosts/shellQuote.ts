// How commands reach a remote shell: every argument single-quoted, so VM names, paths and JSON
// are never interpreted by the shell of the host.
import { AppError } from '../errors';

/** Quotes one argument for a POSIX shell: everything inside single quotes is literal. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new AppError('INVALID_ARGUMENT', 'a command argument contains a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(argv: string[]): string {
  if (argv.length === 0) throw new AppError('INVALID_ARGUMENT', 'empty command');
  return argv.map(shellQuote).join(' ');
}
