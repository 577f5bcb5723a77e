/** The service's SQLite file (schema and migrations), the restore point index, the audit table
 *  and its sync with the audit files, verify's damage view. Rebuildable from the repository. */
export { Catalog } from './catalog';
export type { Db } from './db';
export { PointsTable } from './points';
export type { PointQuery, RepositoryTotals } from './points';
export { toPointSummary, manifestVmId, manifestJobId, pointBootCheck } from './pointSummary';
export { encodeCursor, decodeCursor } from './cursor';
export type { Cursor } from './cursor';
export { jsonList, sqliteCode } from './sqlite';
export { StatementCache } from './statementCache';
export { rebuildCatalog, syncBootChecks, syncCatalog } from './rebuild';
export { AuditTable, auditOriginKey } from './audit';
export type { AuditQuery, AuditRow, AuditSource, ImportMark } from './audit';
export { AuditImporter } from './auditImport';
export { PointFollower } from './pointFollower';
export type * from './model';
export { SERVICE_AUDIT_KINDS } from './model';
export { AuditSync } from './auditSync';
export { ServiceAuditLog } from './serviceAudit';
export type { AuthFailure, WrittenLine } from './serviceAudit';
export { DamageView } from './damageView';
export { pointDetail } from './pointDetail';
