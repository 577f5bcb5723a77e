import { randomUUID } from 'crypto';
import express, { type Router } from 'express';
import { SYSTEM } from '../access';
import { requirePermit, sendCreated, sendList, wrap, type SimContext } from '../context';
import { incomplete, notFound, operationFailed } from '../faults';
import { ROOT_TAG_ID, type SimTagRecord } from '../state';
import { tagView } from '../views';
import { body, obj, send, str } from '../wire';

/**
 * Tags (reference §9): the root tag, tags under it (or under another tag), unique names. Adding
 * and removing tags needs tag_management on System (TagsCommandBase).
 */
export function tagsRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;
  type Item = SimTagRecord | 'root';
  const all = (): Item[] => ['root', ...st.data.tags];
  const name = (t: Item): string => (t === 'root' ? 'root' : t.name);

  r.get(
    '/tags',
    wrap((req, res) => sendList(req, res, 'tags', 'tag', all(), { name, id: (t) => (t === 'root' ? ROOT_TAG_ID : t.id) }, (t) => tagView(t))),
  );

  r.get(
    '/tags/:id',
    wrap((req, res) => {
      const t = all().find((x) => (x === 'root' ? ROOT_TAG_ID : x.id) === req.params['id']);
      if (!t) throw notFound();
      send(req, res, 200, 'tag', tagView(t));
    }),
  );

  r.post(
    '/tags',
    wrap((req, res) => {
      requirePermit(ctx, res, 'tag_management', SYSTEM); // TagsCommandBase
      const b = body(req);
      const tagName = str(b, 'name');
      if (!tagName) throw incomplete('Tag', ['name']);
      if (tagName === 'root' || st.data.tags.some((t) => t.name === tagName)) throw operationFailed(409, 'Cannot add Tag. Tag name already exists.');
      const parentRef = obj(b, 'parent');
      let parentId = ROOT_TAG_ID;
      if (parentRef) {
        const p = st.data.tags.find((t) => t.id === str(parentRef, 'id') || t.name === str(parentRef, 'name'));
        if (!p && str(parentRef, 'id') !== ROOT_TAG_ID && str(parentRef, 'name') !== 'root') throw operationFailed(400, 'Cannot add Tag. Parent tag does not exist.');
        parentId = p?.id ?? ROOT_TAG_ID;
      }
      const tag: SimTagRecord = { id: randomUUID(), name: tagName, description: str(b, 'description') ?? '', parentId };
      st.data.tags.push(tag);
      st.save();
      sendCreated(ctx, req, res, 'tag', tagView(tag));
    }),
  );

  r.delete(
    '/tags/:id',
    wrap((req, res) => {
      requirePermit(ctx, res, 'tag_management', SYSTEM); // TagsCommandBase
      const t = st.tag(String(req.params['id']));
      if (!t) throw notFound();
      st.data.tags = st.data.tags.filter((x) => x !== t);
      for (const vm of st.data.vms) vm.tagIds = vm.tagIds.filter((id) => id !== t.id);
      st.save();
      res.status(200).end();
    }),
  );

  return r;
}
