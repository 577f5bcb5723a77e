export type { HostLink } from './hostLink';
export type { VmHostLink } from './vmHost';
export { LocalHost } from './localHost';
