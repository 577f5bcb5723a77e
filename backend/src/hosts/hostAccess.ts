// What a KVM host grants the backup service's SSH account when it is not root: the
// authorized_keys line (only what the links use), the sudoers drop-in allowing exactly the virsh
// command lines the product runs (built from qmp/virshCommand.ts), the sshd_config block that
// closes what a key line cannot, and the commands that create the account. HOSTS.md says why.
import { AppError } from '../errors';
import { DEFAULT_LIBVIRT_URI, STDBUF_PATH, SUDO_DOMAIN_PATTERN, VIRSH_PATH, VIRSH_QGA_COMMANDS, VIRSH_QMP_COMMANDS } from '../qmp';

/**
 * `restrict` turns off everything (pty, agent and X11 forwarding, port forwarding, ~/.ssh/rc)
 * and `port-forwarding` turns back on the one thing the links need: NBD and QMP sockets are
 * reached as direct-streamlocal channels, which sshd allows only with port forwarding on.
 * `permitopen` cannot narrow it: sshd checks streamlocal paths against the same list and a
 * path cannot be written there, so any permitopen refuses the sockets. The rest is spelt out
 * so the line reads the same on an sshd that would ever widen `restrict`.
 */
export const KEY_OPTIONS = ['restrict', 'port-forwarding', 'no-pty', 'no-agent-forwarding', 'no-X11-forwarding', 'no-user-rc'] as const;

/** Account names sudoers and useradd both take as they are. */
const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;
/** An address, host name, CIDR or OpenSSH pattern for from="…" (no quote, comma or space). */
const FROM_ITEM = /^[A-Za-z0-9.:*?/%![\]-]+$/;

export type SudoSyntax = 'regex' | 'glob';

export interface HostAccessOptions {
  /** the account on the host, e.g. olvm-backup */
  user: string;
  /** the service's public key, `ssh-ed25519 AAAA… comment` */
  publicKey: string;
  /** the backup server's address(es) as the host sees them */
  from: string[];
  kind: 'libvirt' | 'qmp-socket';
  /** libvirt hosts: virsh's URI, as in the hosts file (default qemu:///system) */
  libvirtUri?: string;
  /** the group QEMU runs as (qemu on EL/OLVM, libvirt-qemu on Debian): the account joins it */
  qemuGroup?: string;
  /** scratch directory on the host (the hosts file's scratchDir) */
  scratchDir?: string;
  /** `regex` needs sudo 1.9.10 or later; `glob` is for older sudo (EL8/EL9 ship 1.9.5) */
  sudoSyntax?: SudoSyntax;
}

export interface HostAccessFiles {
  /** one line for ~<user>/.ssh/authorized_keys */
  authorizedKeys: string;
  /** /etc/sudoers.d/olvm-backup (libvirt hosts only) */
  sudoers: string | undefined;
  /** appended to the end of /etc/ssh/sshd_config */
  sshdMatch: string;
  /** shell commands (as root on the host) that create the account and its directories */
  setupCommands: string[];
}

export function checkAccount(user: string): string {
  if (!ACCOUNT.test(user) || user === 'root') throw new AppError('INVALID_ARGUMENT', `${JSON.stringify(user)} is not a plain non-root account name (lower case letters, digits, _ and -)`);
  return user;
}

export function authorizedKeysLine(publicKey: string, from: string[]): string {
  const key = publicKey.trim().split(/\s+/);
  if (key.length < 2 || !/^(ssh-|ecdsa-|sk-)/.test(key[0] ?? '') || !/^AAAA[A-Za-z0-9+/]+=*$/.test(key[1] ?? '')) {
    throw new AppError('INVALID_ARGUMENT', 'the service key is not an OpenSSH public key line (type, base64 blob, comment)');
  }
  if (from.length === 0) throw new AppError('INVALID_ARGUMENT', 'from="…" needs at least one address of the backup server');
  for (const f of from) if (!FROM_ITEM.test(f)) throw new AppError('INVALID_ARGUMENT', `${JSON.stringify(f)} is not an address, host name or pattern for from="…"`);
  return `from="${from.join(',')}",${KEY_OPTIONS.join(',')} ${key.join(' ')}\n`;
}

/** The sshd_config block for the account: what a key line cannot close (remote listening) and the same limits again. */
export function sshdMatchBlock(user: string): string {
  checkAccount(user);
  return [
    `# olvm-backup: what the backup account may do over SSH. Append to the END of /etc/ssh/sshd_config`,
    `# (a Match block runs to the next Match or the end of the file), then: sshd -t && systemctl reload sshd`,
    `Match User ${user}`,
    // direct-streamlocal (NBD, QMP sockets) needs local forwarding; it cannot be allowed
    // without direct-tcpip, but listening on the host (-R, remote unix sockets) can be refused
    `    AllowTcpForwarding local`,
    `    AllowStreamLocalForwarding local`,
    `    AllowAgentForwarding no`,
    `    X11Forwarding no`,
    `    PermitTTY no`,
    `    PermitTunnel no`,
    `    PermitUserRC no`,
    '',
  ].join('\n');
}

/** POSIX ERE for a literal string; '#' also escaped, the one sudoers character a regex must escape. */
function ereLiteral(s: string): string {
  return s.replace(/[.[\]()*+?{}|^$\\]/g, '\\$&').replace(/#/g, '\\#');
}

/** A sudoers glob argument for a literal string: ',', ':', '=', '\' and the wildcards escaped. */
function globLiteral(s: string): string {
  return s.replace(/[\\,:=*?[\]]/g, '\\$&');
}

function checkUri(uri: string): string {
  if (!/^[A-Za-z0-9+]+:\/\/[^\s"'`#]*$/.test(uri)) throw new AppError('INVALID_ARGUMENT', `${JSON.stringify(uri)} is not a libvirt URI sudoers can name (no spaces, quotes or #)`);
  return uri;
}

/** The regex form (sudo >= 1.9.10): arguments matched whole, JSON and domain one word each. */
function regexRules(uri: string): string[] {
  const u = ereLiteral(uri);
  const qmp = VIRSH_QMP_COMMANDS.join('|');
  const qga = VIRSH_QGA_COMMANDS.join('|');
  const rules = [
    `${VIRSH_PATH} ^-q -c ${u} qemu-monitor-command --domain ${SUDO_DOMAIN_PATTERN} --cmd \\{"execute":"(${qmp})"(,"arguments":\\{[^ ]*\\})?\\}$`,
    `${VIRSH_PATH} ^-q -c ${u} qemu-agent-command ${SUDO_DOMAIN_PATTERN} \\{"execute":"(${qga})"\\} --timeout [0-9]+$`,
    `${STDBUF_PATH} ^-oL ${VIRSH_PATH} -q -c ${u} qemu-monitor-event --domain ${SUDO_DOMAIN_PATTERN} --loop$`,
  ];
  for (const r of rules) {
    const re = r.slice(r.indexOf(' ^') + 1);
    if (re.length > 1024) throw new AppError('INVALID_ARGUMENT', `the sudoers rule for ${uri} would exceed sudo's 1024-character limit on a regular expression`);
  }
  return rules;
}

/**
 * The glob form (any sudo): one entry per command name, so the JSON must start with an allowed
 * command; a `*` may span spaces, which the negated entries below narrow (see HOSTS.md).
 */
function globRules(uri: string): { allow: string[]; deny: string[] } {
  const u = globLiteral(uri);
  const allow: string[] = [];
  for (const c of VIRSH_QMP_COMMANDS) {
    const head = `${VIRSH_PATH} -q -c ${u} qemu-monitor-command --domain * --cmd {"execute"\\:"${c}"`;
    allow.push(`${head}}`, `${head}\\,"arguments"\\:{*}`);
  }
  for (const c of VIRSH_QGA_COMMANDS) allow.push(`${VIRSH_PATH} -q -c ${u} qemu-agent-command * {"execute"\\:"${c}"} --timeout *`);
  allow.push(`${STDBUF_PATH} -oL ${VIRSH_PATH} -q -c ${u} qemu-monitor-event --domain * --loop`);
  // options a '*' could smuggle in: an HMP command line, file descriptors handed to QEMU, an
  // event listener that filters or stops early
  const deny = [
    ...['--hmp', '--pass-fds', '--keep-fds'].map((o) => `${VIRSH_PATH} *${o}*`),
    ...['--event', '--regex', '--timeout'].map((o) => `${STDBUF_PATH} *${o}*`),
  ];
  return { allow, deny };
}

/** The sudoers drop-in: exactly the virsh command lines of qmp/virshCommand.ts, as root, without a password or a tty. */
export function sudoersDropIn(o: { user: string; libvirtUri?: string; sudoSyntax?: SudoSyntax }): string {
  const user = checkAccount(o.user);
  const uri = checkUri(o.libvirtUri ?? DEFAULT_LIBVIRT_URI);
  const syntax = o.sudoSyntax ?? 'regex';
  const head = [
    `# /etc/sudoers.d/olvm-backup: the virsh commands the olvm-backup service runs on this host as`,
    `# ${user}, and nothing else. Install with: visudo -cf FILE && install -m 0440 FILE /etc/sudoers.d/olvm-backup`,
  ];
  if (syntax === 'regex') {
    const rules = regexRules(uri);
    return [
      ...head,
      `# Arguments are POSIX extended regular expressions matched against the whole argument list`,
      `# (sudo 1.9.10 or later): the QMP JSON and the domain are one word each, the commands listed.`,
      `Cmnd_Alias OLVM_BACKUP_VIRSH = \\`,
      ...rules.map((r, i) => `    ${r}${i < rules.length - 1 ? ', \\' : ''}`),
      `Defaults!OLVM_BACKUP_VIRSH !requiretty`,
      `${user} ALL=(root) NOPASSWD: OLVM_BACKUP_VIRSH`,
      '',
    ].join('\n');
  }
  const { allow, deny } = globRules(uri);
  return [
    ...head,
    `# Shell-style wildcards, for sudo older than 1.9.10 (no regular expressions): one entry per`,
    `# QMP command; the negated entries refuse the virsh options a '*' could carry.`,
    `Cmnd_Alias OLVM_BACKUP_VIRSH = \\`,
    ...allow.map((r, i) => `    ${r}${i < allow.length - 1 ? ', \\' : ''}`),
    `Cmnd_Alias OLVM_BACKUP_NOT = \\`,
    ...deny.map((r, i) => `    ${r}${i < deny.length - 1 ? ', \\' : ''}`),
    `Defaults!OLVM_BACKUP_VIRSH !requiretty`,
    `${user} ALL=(root) NOPASSWD: OLVM_BACKUP_VIRSH, !OLVM_BACKUP_NOT`,
    '',
  ].join('\n');
}

/** All the host needs for `o.user`; HOSTS.md explains each part. */
export function hostAccessFiles(o: HostAccessOptions): HostAccessFiles {
  const user = checkAccount(o.user);
  const cmds = [`useradd --create-home --shell /bin/sh${o.qemuGroup ? ` --groups ${o.qemuGroup}` : ''} --password '*' ${user}`];
  if (o.qemuGroup) cmds.push(`usermod -a -G ${o.qemuGroup} ${user}    # if the account existed already`);
  cmds.push(`install -d -m 0700 -o ${user} -g ${user} ~${user}/.ssh`);
  if (o.scratchDir) cmds.push(`install -d -m 0711 -o ${user} -g ${user} ${o.scratchDir}`);
  return {
    authorizedKeys: authorizedKeysLine(o.publicKey, o.from),
    sudoers: o.kind === 'libvirt' ? sudoersDropIn({ user, ...(o.libvirtUri ? { libvirtUri: o.libvirtUri } : {}), ...(o.sudoSyntax ? { sudoSyntax: o.sudoSyntax } : {}) }) : undefined,
    sshdMatch: sshdMatchBlock(user),
    setupCommands: cmds,
  };
}

/** The group part of a `user:group` owner (or the whole string when it has no colon). */
export function groupOf(owner: string | undefined): string | undefined {
  if (!owner) return undefined;
  const g = owner.includes(':') ? owner.slice(owner.indexOf(':') + 1) : owner;
  return g === '' ? undefined : g;
}
