// How a virsh command line is built on a libvirt host: run as the SSH user (root), or through
// `sudo -n` for a restricted account. Also the exact QMP and guest-agent commands the product
// sends through virsh: hosts/hostAccess.ts renders the sudoers rule from these lists, so the
// rule and the code cannot drift apart.
import { AppError } from '../errors';

/** Absolute paths: sudo matches the command it runs by path, and stdbuf execs its argument as given. */
export const VIRSH_PATH = '/usr/bin/virsh';
export const STDBUF_PATH = '/usr/bin/stdbuf';
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

/**
 * Every QMP command a backup sends to a libvirt domain (BlockApi, BlockJob, VirshSession). A
 * command not listed here is refused before it is sent when the link goes through sudo.
 */
export const VIRSH_QMP_COMMANDS = [
  'query-status',
  'query-block',
  'query-named-block-nodes',
  'query-jobs',
  'query-block-exports',
  'transaction',
  'blockdev-add',
  'blockdev-del',
  'block-dirty-bitmap-remove',
  'nbd-server-start',
  'nbd-server-stop',
  'block-export-add',
  'block-export-del',
  'job-cancel',
  'job-dismiss',
] as const;

/** The guest-agent commands of a filesystem-consistent backup (VirshGuestAgent). */
export const VIRSH_QGA_COMMANDS = ['guest-ping', 'guest-fsfreeze-status', 'guest-fsfreeze-freeze', 'guest-fsfreeze-thaw'] as const;

/**
 * Domain names (or UUIDs) the sudoers rule admits, as a POSIX extended regular expression: no
 * space (sudo matches the arguments joined by spaces) and no leading dash (not an option).
 * oVirt/OLVM domains are found by their UUID; their names only use [A-Za-z0-9_.-] as well.
 */
export const SUDO_DOMAIN_PATTERN = '[A-Za-z0-9_.][A-Za-z0-9_.-]*';
const SUDO_DOMAIN = new RegExp(`^${SUDO_DOMAIN_PATTERN}$`);

export function sudoAdmitsDomain(domain: string): boolean {
  return SUDO_DOMAIN.test(domain);
}

/** How virsh is reached on one host. */
export interface VirshAccess {
  uri: string;
  /** run through `sudo -n` (a non-root SSH account with the sudoers rule) */
  sudo: boolean;
}

/** Non-interactive: a missing rule fails at once instead of waiting for a password. */
const SUDO = ['sudo', '-n'] as const;

export function virshArgv(a: VirshAccess, ...rest: string[]): string[] {
  return a.sudo ? [...SUDO, VIRSH_PATH, '-q', '-c', a.uri, ...rest] : ['virsh', '-q', '-c', a.uri, ...rest];
}

/* The command lines below are the ones the product runs (VirshSession, VirshGuestAgent) and the
 * ones `setup` asks sudo about on each host (setup/hostKeys.ts): one definition for both. */

/** One QMP command (commandJson) to the domain's monitor. */
export function monitorCommandArgv(a: VirshAccess, domain: string, json: string): string[] {
  return virshArgv(a, 'qemu-monitor-command', '--domain', domain, '--cmd', json);
}

/** One guest-agent command (commandJson), virsh's own deadline in whole seconds (at least 1). */
export function agentCommandArgv(a: VirshAccess, domain: string, json: string, timeoutMs: number): string[] {
  return virshArgv(a, 'qemu-agent-command', domain, json, '--timeout', String(Math.max(1, Math.ceil(timeoutMs / 1000))));
}

/** `virsh qemu-monitor-event --loop`, line-buffered by stdbuf (virsh's stdout is a pipe here);
 *  through sudo, stdbuf is what sudo runs (matched by its path) and it execs virsh. */
export function eventListenerArgv(a: VirshAccess, domain: string): string[] {
  const virsh = virshArgv(a, 'qemu-monitor-event', '--domain', domain, '--loop');
  const at = a.sudo ? SUDO.length : 0;
  return [...virsh.slice(0, at), a.sudo ? STDBUF_PATH : 'stdbuf', '-oL', ...virsh.slice(at)];
}

/** A command line run through sudo, as `sudo -n -l` asks whether the rule admits it (running nothing). */
export function sudoListArgv(argv: readonly string[]): string[] {
  if (argv[0] !== SUDO[0] || argv[1] !== SUDO[1]) throw new AppError('INVALID_ARGUMENT', `not a command line run through sudo: ${argv.join(' ')}`);
  return [...SUDO, '-l', ...argv.slice(SUDO.length)];
}

/**
 * The event listener (eventListenerArgv) in the background of a tiny script that kills it when
 * our end of the channel closes (stdin EOF), e.g. when the connection drops. Through sudo the
 * user's script signals sudo, which relays the signal to virsh. The listener's argv — URI and
 * domain included — are positional parameters, never part of the script text.
 */
export function monitorEventArgv(a: VirshAccess, domain: string): string[] {
  const script = '"$@" & p=$!; cat >/dev/null; kill "$p" 2>/dev/null; wait "$p"';
  return ['sh', '-c', script, 'olvm-events', ...eventListenerArgv(a, domain)];
}

/**
 * A QMP (or guest-agent) command as one argument without spaces: JSON.stringify puts none
 * between tokens, and one inside a string means the same written `\u0020`. The sudoers rule
 * matches the JSON as a run of non-space characters, so it cannot carry extra virsh arguments.
 */
export function commandJson(command: string, args?: Record<string, unknown>): string {
  const wire = args && Object.keys(args).length > 0 ? { execute: command, arguments: args } : { execute: command };
  return JSON.stringify(wire).replace(/ /g, '\\u0020');
}

/** sudo's own complaint when it ran nothing (no rule for this command line, no sudo at all); undefined otherwise. */
export function sudoRefusal(r: { code: number | null; stderr: string }): string | undefined {
  if (r.code === 0) return undefined;
  const text = r.stderr.trim();
  if (/^sudo: /m.test(text)) return text.split('\n').find((l) => l.startsWith('sudo: ')) ?? text;
  if (r.code === 127 && /sudo: (command )?not found|sudo: No such file/i.test(text)) return text;
  return undefined;
}

/** The coded error for a command sudo would not run, naming the host and what to install. */
export function sudoRefusedError(hostLabel: string, what: string, refusal: string): AppError {
  return new AppError(
    'HOST_SUDO_REFUSED',
    `sudo on host ${hostLabel} refused ${what} (${refusal}): install the sudoers rule \`olvm-backup host-access\` prints for this host (HOSTS.md, a restricted account)`,
    { details: { host: hostLabel, reason: 'SUDO_REFUSED' } },
  );
}
