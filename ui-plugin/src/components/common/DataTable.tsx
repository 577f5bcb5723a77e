// The plugin's one table: sort, free-text filter and pagination (logic/tableQuery.ts decides), PatternFly rendering.
import { EmptyState, EmptyStateBody, Pagination, SearchInput, Toolbar, ToolbarContent, ToolbarItem } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { useState, type ReactNode } from 'react';
import { applyQuery, type Column, type SortDirection, type TableQuery } from '../../logic/tableQuery';
import { useTexts } from '../../context/appContext';

export interface DataColumn<T> extends Column<T> {
  title: string;
  render: (row: T) => ReactNode;
}

interface Props<T> {
  id: string;
  ariaLabel: string;
  columns: Array<DataColumn<T>>;
  rows: T[];
  rowKey: (row: T) => string;
  rowId?: (row: T) => string;
  emptyText: string;
  initialSort?: { key: string; direction: SortDirection };
  /** More toolbar items (state filter …) and the filter they apply. */
  toolbarExtra?: ReactNode;
  extraFilter?: (row: T) => boolean;
  perPage?: number;
  footer?: ReactNode;
}

/** A PatternFly table that sorts by any column with a sortValue, filters on free text, and paginates. */
export function DataTable<T>(p: Props<T>) {
  const { t } = useTexts();
  const [q, setQ] = useState<TableQuery>({ sortKey: p.initialSort?.key ?? null, direction: p.initialSort?.direction ?? 'asc', filter: '', page: 1, perPage: p.perPage ?? 10 });
  const res = applyQuery(p.rows, p.columns, q, p.extraFilter);
  const sortIndex = p.columns.findIndex((c) => c.key === q.sortKey);
  return (
    <>
      <Toolbar id={`${p.id}-toolbar`}>
        <ToolbarContent>
          <ToolbarItem>
            <SearchInput
              id={`${p.id}-filter`}
              aria-label={t('filterLabel')}
              placeholder={t('filterPlaceholder')}
              value={q.filter}
              onChange={(_e, v) => setQ({ ...q, filter: v, page: 1 })}
              onClear={() => setQ({ ...q, filter: '', page: 1 })}
            />
          </ToolbarItem>
          {p.toolbarExtra}
          <ToolbarItem variant="pagination" align={{ default: 'alignEnd' }}>
            <Pagination
              id={`${p.id}-pagination`}
              itemCount={res.total}
              perPage={q.perPage}
              page={res.page}
              isCompact
              onSetPage={(_e, page) => setQ({ ...q, page })}
              onPerPageSelect={(_e, perPage) => setQ({ ...q, perPage, page: 1 })}
            />
          </ToolbarItem>
        </ToolbarContent>
      </Toolbar>
      <Table id={p.id} aria-label={p.ariaLabel} variant="compact">
        <Thead>
          <Tr>
            {p.columns.map((c, i) => (
              <Th
                key={c.key}
                modifier="wrap"
                sort={
                  c.sortValue
                    ? {
                        columnIndex: i,
                        sortBy: { index: sortIndex >= 0 ? sortIndex : undefined, direction: q.direction },
                        onSort: (_e, index, direction) => setQ({ ...q, sortKey: p.columns[index]?.key ?? null, direction }),
                      }
                    : undefined
                }
              >
                {c.title}
              </Th>
            ))}
          </Tr>
        </Thead>
        <Tbody>
          {res.rows.map((r) => (
            <Tr key={p.rowKey(r)} id={p.rowId ? p.rowId(r) : undefined}>
              {p.columns.map((c) => (
                <Td key={c.key} dataLabel={c.title}>
                  {c.render(r)}
                </Td>
              ))}
            </Tr>
          ))}
        </Tbody>
      </Table>
      {res.total === 0 ? (
        <EmptyState variant="xs" id={`${p.id}-empty`}>
          <EmptyStateBody>{p.rows.length === 0 ? p.emptyText : t('noMatch')}</EmptyStateBody>
        </EmptyState>
      ) : null}
      {p.footer}
    </>
  );
}
