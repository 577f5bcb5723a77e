import type { Tag } from '../types';
import { Fields, listOf, type Json } from './fields';

export function parseTag(o: Json): Tag {
  const f = new Fields('tag', o);
  return {
    id: f.reqStr('id'),
    name: f.reqStr('name'),
    description: f.str('description') ?? '',
    parentId: f.refId('parent'),
  };
}

export function parseTags(body: unknown): Tag[] {
  return listOf(body, 'tag', 'tag list').map(parseTag);
}
