export { planRestore } from './plan';
export type { PlanInput } from './plan';
export { rewriteOvf } from './ovfRewrite';
export type { OvfRewrite, OvfDiskRewrite } from './ovfRewrite';
export { readInventory, pointDataBytes } from './inventory';
export type * from './types';
export { planView } from './view';
