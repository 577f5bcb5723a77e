/**
 * Client-side sort, filter and pagination for the PatternFly tables. Pure and generic: a
 * column says how to read a sortable value and which text the free-text filter searches.
 */
export type SortDirection = 'asc' | 'desc';

export interface Column<T> {
  key: string;
  sortValue?: (row: T) => string | number | null;
  filterText?: (row: T) => string;
}

export interface TableQuery {
  sortKey: string | null;
  direction: SortDirection;
  filter: string;
  page: number;
  perPage: number;
}

export interface TableResult<T> {
  rows: T[];
  /** Rows that pass the filter, before pagination. */
  total: number;
  /** The page actually shown (clamped into range). */
  page: number;
}

function compare(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return 1; // unknowns last in either direction
  if (b === null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' });
}

export function applyQuery<T>(rows: T[], columns: Array<Column<T>>, q: TableQuery, extraFilter?: (row: T) => boolean): TableResult<T> {
  const needle = q.filter.trim().toLowerCase();
  let out = rows.filter((r) => (extraFilter ? extraFilter(r) : true));
  if (needle) {
    out = out.filter((r) => columns.some((c) => (c.filterText ? c.filterText(r).toLowerCase().includes(needle) : false)));
  }
  const col = q.sortKey ? columns.find((c) => c.key === q.sortKey) : undefined;
  if (col?.sortValue) {
    const get = col.sortValue;
    const dir = q.direction === 'asc' ? 1 : -1;
    out = out
      .map((r, i) => ({ r, i, v: get(r) }))
      .sort((x, y) => {
        if (x.v === null || y.v === null) return compare(x.v, y.v) || x.i - y.i;
        return dir * compare(x.v, y.v) || x.i - y.i;
      })
      .map((x) => x.r);
  }
  const perPage = Math.max(1, q.perPage);
  const pages = Math.max(1, Math.ceil(out.length / perPage));
  const page = Math.min(Math.max(1, q.page), pages);
  return { rows: out.slice((page - 1) * perPage, page * perPage), total: out.length, page };
}
