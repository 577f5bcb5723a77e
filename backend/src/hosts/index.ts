/** How the QEMU of a VM is reached: on this machine, or on a KVM host over SSH (HOSTS.md). */
export type { HostLink } from './hostLink';
export type { VmHostLink } from './vmHost';
export { LocalHost } from './localHost';
export { SshConnection, SshConnectionPool } from './sshConnection';
export { shellQuote, shellCommand } from './shellQuote';
export { sha256Fingerprint } from './hostKeyPin';
export type { SshHostConfig } from './sshLogin';
export { SshLibvirtHost, SshQmpSocketHost } from './sshHost';
export type { SshHostOptions, SshLibvirtHostOptions, SshQmpSocketHostOptions } from './sshHost';
export { HostDirectory } from './hostDirectory';
export type { HostEntry, HostsConfig, ResolvedHost } from './hostDirectory';
export { authorizedKeysLine, groupOf, hostAccessFiles, KEY_OPTIONS, sshdMatchBlock, sudoersDropIn } from './hostAccess';
export type { HostAccessFiles, HostAccessOptions, SudoSyntax } from './hostAccess';
