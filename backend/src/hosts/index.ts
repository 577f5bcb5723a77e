export type { HostLink } from './hostLink';
export type { VmHostLink } from './vmHost';
export { LocalHost } from './localHost';
export { SshConnection, SshConnectionPool, shellQuote, shellCommand, sha256Fingerprint } from './sshConnection';
export type { SshHostConfig } from './sshConnection';
export { SshLibvirtHost, SshQmpSocketHost } from './sshHost';
export type { SshHostOptions, SshLibvirtHostOptions, SshQmpSocketHostOptions } from './sshHost';
export { HostDirectory } from './hostDirectory';
export type { HostEntry, HostsConfig, ResolvedHost } from './hostDirectory';
