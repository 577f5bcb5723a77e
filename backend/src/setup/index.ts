/** `olvm-backup setup`: the engine CA, host keys, account checks, the config file. */
export { runSetup } from './runSetup';
export type { HostsKind, SetupIo, SetupOptions, SetupResult } from './runSetup';
export { linePrompter } from './prompt';
export type { Prompter } from './prompt';
export { lookupUser } from './files';
export type { ServiceOwner } from './files';
export { formatHostAccess, writeHostAccess } from './hostAccessOut';
export { publicKeyOf } from './hostKeys';
