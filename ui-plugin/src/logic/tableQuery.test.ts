// Unit tests of the tables' sorting, filtering and pagination.
import { applyQuery, type Column } from './tableQuery';

interface Row {
  name: string;
  size: number | null;
}
const rows: Row[] = [
  { name: 'web10', size: 5 },
  { name: 'web2', size: null },
  { name: 'db01', size: 7 },
  { name: 'app01', size: 1 },
];
const cols: Array<Column<Row>> = [
  { key: 'name', sortValue: (r) => r.name, filterText: (r) => r.name },
  { key: 'size', sortValue: (r) => r.size },
];
const q = { sortKey: null, direction: 'asc' as const, filter: '', page: 1, perPage: 10 };

describe('table query', () => {
  it('sorts naturally both ways, unknowns last', () => {
    expect(applyQuery(rows, cols, { ...q, sortKey: 'name' }).rows.map((r) => r.name)).toEqual(['app01', 'db01', 'web2', 'web10']);
    expect(applyQuery(rows, cols, { ...q, sortKey: 'name', direction: 'desc' }).rows.map((r) => r.name)).toEqual(['web10', 'web2', 'db01', 'app01']);
    expect(applyQuery(rows, cols, { ...q, sortKey: 'size', direction: 'desc' }).rows.map((r) => r.name)).toEqual(['db01', 'web10', 'app01', 'web2']);
    expect(applyQuery(rows, cols, { ...q, sortKey: 'size' }).rows.map((r) => r.name)).toEqual(['app01', 'web10', 'db01', 'web2']);
  });

  it('filters on text case-insensitively, plus an extra filter', () => {
    expect(applyQuery(rows, cols, { ...q, filter: 'WEB' }).total).toBe(2);
    expect(applyQuery(rows, cols, { ...q, filter: 'web' }, (r) => r.size !== null).rows.map((r) => r.name)).toEqual(['web10']);
  });

  it('paginates and clamps the page', () => {
    const r = applyQuery(rows, cols, { ...q, sortKey: 'name', perPage: 3, page: 2 });
    expect(r.rows.map((x) => x.name)).toEqual(['web10']);
    expect(r.total).toBe(4);
    expect(applyQuery(rows, cols, { ...q, perPage: 3, page: 9 }).page).toBe(2);
    expect(applyQuery([], cols, { ...q, page: 3 }).page).toBe(1);
  });
});
