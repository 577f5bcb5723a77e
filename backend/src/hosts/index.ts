/** How the QEMU of a VM is reached: on this machine, or on a KVM host over SSH (HOSTS.md). */
export type { HostLink } from './hostLink';
export type { VmHostLink } from './vmHost';
export { LocalHost } from './localHost';
export { SshConnection, SshConnectionPool, shellQuote, shellCommand, sha256Fingerprint } from './sshConnection';
export type { SshHostConfig } from './sshConnection';
export { SshLibvirtHost, SshQmpSocketHost } from './sshHost';
export type { SshHostOptions, SshLibvirtHostOptions, SshQmpSocketHostOptions } from './sshHost';
export { HostDirectory } from './hostDirectory';
export type { HostEntry, HostsConfig, ResolvedHost } from './hostDirectory';
