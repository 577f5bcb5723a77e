import { AppError } from '../errors';

/** Where a newest-first page ended: the (createdAt, id) of its last item. */
export interface Cursor {
  createdAt: string;
  id: string;
}

/**
 * Paging cursors are `<createdAt>|<id>` of the last item of the previous page. Keyset paging,
 * not offsets: jobs created while the user pages do not shift the pages, and a deleted item does
 * not invalidate a cursor that names it.
 */
export function encodeCursor(item: Cursor): string {
  return `${item.createdAt}|${item.id}`;
}

/** INVALID_ARGUMENT for anything encodeCursor did not make (the value comes from a URL). */
export function decodeCursor(cursor: string): Cursor {
  const bar = cursor.indexOf('|');
  const time = bar > 0 ? Date.parse(cursor.slice(0, bar)) : NaN;
  if (Number.isNaN(time) || bar === cursor.length - 1) {
    throw new AppError('INVALID_ARGUMENT', `invalid paging cursor ${JSON.stringify(cursor)}`);
  }
  // Verbatim, not normalized: it is compared as text with the stored time it was made from.
  return { createdAt: cursor.slice(0, bar), id: cursor.slice(bar + 1) };
}
