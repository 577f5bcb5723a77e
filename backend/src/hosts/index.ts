export type { HostLink } from './hostLink';
export { LocalHost } from './localHost';
