export { Catalog } from './catalog';
export { JobsTable, INTERRUPTED_ERROR } from './jobs';
export type { JobPatch, JobQuery, JobTotals } from './jobs';
export { PointsTable } from './points';
export type { PointQuery, RepositoryTotals } from './points';
export { toPointSummary, manifestVmId, manifestJobId } from './pointSummary';
export { encodeCursor, decodeCursor } from './cursor';
export type { Cursor } from './cursor';
export { rebuildCatalog, syncCatalog } from './rebuild';
