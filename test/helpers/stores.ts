import type { Catalog } from '../../backend/src/catalog';
import { JobsTable } from '../../backend/src/jobs';
import { PoliciesTable } from '../../backend/src/schedule';

/**
 * The tables jobs/ and schedule/ keep in the catalog's file, opened on a test's catalog as
 * main.ts opens them (one of each per catalog: their statements are prepared once).
 */
const jobTables = new WeakMap<Catalog, JobsTable>();
const policyTables = new WeakMap<Catalog, PoliciesTable>();

export function jobsOf(c: Catalog): JobsTable {
  let t = jobTables.get(c);
  if (!t) jobTables.set(c, (t = new JobsTable(c.db)));
  return t;
}

export function policiesOf(c: Catalog): PoliciesTable {
  let t = policyTables.get(c);
  if (!t) policyTables.set(c, (t = new PoliciesTable(c.db)));
  return t;
}
