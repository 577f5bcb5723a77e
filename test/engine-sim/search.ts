import { badRequest } from './faults';

/**
 * The engine's search language, the part clients use (reference §1.4):
 * `field=value [and|or field!=value ...] [sortby field [asc|desc]] [page N]`, `*` wildcards,
 * quoted values, case-insensitive unless case_sensitive=true. A term without an operator is a
 * free-text match on the name (and description). Unknown fields fail like the engine's
 * autocompleter does: 400.
 */

export type Fields<T> = Record<string, (item: T) => string | string[] | undefined>;

interface Term {
  field: string | undefined;
  op: '=' | '!=';
  value: string;
}

export function search<T>(items: T[], query: string | undefined, fields: Fields<T>, caseSensitive = false): T[] {
  if (query === undefined || query.trim() === '') return items;
  let q = query.trim();
  const pageMatch = /\s*\bpage\s+(\d+)\s*$/i.exec(q);
  if (pageMatch) q = q.slice(0, pageMatch.index); // applied by pageOf
  let sort: { field: string; desc: boolean } | undefined;
  const sortMatch = /\s*\bsortby\s+(\w+)(\s+(asc|desc))?\s*$/i.exec(q);
  if (sortMatch) {
    sort = { field: (sortMatch[1] ?? '').toLowerCase(), desc: (sortMatch[3] ?? '').toLowerCase() === 'desc' };
    q = q.slice(0, sortMatch.index);
  }
  const groups = q.trim() === '' ? [] : splitWords(q, 'or').map((g) => splitWords(g, 'and').map(parseTerm));
  for (const t of groups.flat()) {
    if (t.field !== undefined && !(t.field in fields)) throw badRequest(`Invalid search query: unknown field '${t.field}'`);
  }
  const norm = (v: string): string => (caseSensitive ? v : v.toLowerCase());
  const matches = (item: T, t: Term): boolean => {
    const getter = t.field === undefined ? undefined : fields[t.field];
    const raw = t.field === undefined ? [fields['name']?.(item), fields['description']?.(item)].flat() : getter?.(item);
    const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is string => v !== undefined).map(norm);
    const pattern = norm(t.value);
    const re = new RegExp(`^${pattern.split('*').map(escapeRe).join('.*')}$`, 's');
    const hit = t.field === undefined ? values.some((v) => v.includes(pattern.replace(/\*/g, ''))) : values.some((v) => re.test(v));
    return t.op === '=' ? hit : !hit;
  };
  let out = groups.length === 0 ? items : items.filter((it) => groups.some((and) => and.every((t) => matches(it, t))));
  if (sort) {
    const getter = fields[sort.field];
    if (!getter) throw badRequest(`Invalid search query: unknown sort field '${sort.field}'`);
    const key = (it: T): string => String(getter(it) ?? '');
    out = [...out].sort((a, b) => key(a).localeCompare(key(b)) * (sort.desc ? -1 : 1));
  }
  return out;
}

/** `page N` with `max` (stateless paging, reference §1.4). */
export function pageOf<T>(items: T[], query: string | undefined, max: number | undefined): T[] {
  const m = query ? /\bpage\s+(\d+)\s*$/i.exec(query.trim()) : null;
  const page = m ? Math.max(1, Number(m[1])) : 1;
  if (max === undefined || max < 0) return page === 1 ? items : [];
  return items.slice((page - 1) * max, page * max);
}

function splitWords(q: string, word: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  const tokens = q.split(/(\s+)/);
  for (const tok of tokens) {
    if ((tok.match(/"/g) ?? []).length % 2 === 1) quoted = !quoted;
    if (!quoted && tok.toLowerCase() === word) {
      parts.push(cur.trim());
      cur = '';
    } else {
      cur += tok;
    }
  }
  parts.push(cur.trim());
  return parts.filter((p) => p !== '');
}

function parseTerm(t: string): Term {
  const m = /^([\w.]+)\s*(!=|=)\s*(.*)$/.exec(t.trim());
  if (!m) return { field: undefined, op: '=', value: unquote(t.trim()) };
  return { field: (m[1] ?? '').toLowerCase(), op: m[2] === '!=' ? '!=' : '=', value: unquote((m[3] ?? '').trim()) };
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

function escapeRe(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}
