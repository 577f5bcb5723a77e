import { AppError } from '../errors';
import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { entityOf } from './parse/fields';
import { parseTag, parseTags } from './parse/tag';
import type { Tag } from './types';

/** Engine tags (reference §9): policies select VMs by tag. */
export async function listTags(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<Tag[]> {
  return parseTags(await conn.request({ ...opts, method: 'GET', path: '/tags' }));
}

export async function findTagByName(conn: EngineConnection, name: string, opts: EngineCallOptions = {}): Promise<Tag | undefined> {
  return (await listTags(conn, opts)).find((t) => t.name === name);
}

/** `POST /tags`; the parent defaults to the root tag. */
export async function addTag(
  conn: EngineConnection,
  tag: { name: string; description?: string; parentId?: string },
  opts: EngineCallOptions = {},
): Promise<Tag> {
  const body: Record<string, unknown> = { name: tag.name };
  if (tag.description !== undefined) body.description = tag.description;
  if (tag.parentId !== undefined) body.parent = { id: tag.parentId };
  return parseTag(entityOf(await conn.request({ ...opts, method: 'POST', path: '/tags', body }), `new tag ${tag.name}`));
}

export async function listVmTags(conn: EngineConnection, vmId: string, opts: EngineCallOptions = {}): Promise<Tag[]> {
  return parseTags(await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/tags` }));
}

/** `POST /vms/{id}/tags` with the tag's name or id. */
export async function assignTag(
  conn: EngineConnection,
  vmId: string,
  tag: { name: string } | { id: string },
  opts: EngineCallOptions = {},
): Promise<Tag> {
  const body = 'id' in tag ? { id: tag.id } : { name: tag.name };
  const reply = await conn.request({ ...opts, method: 'POST', path: `/vms/${seg(vmId)}/tags`, body });
  if (reply === undefined) {
    throw new AppError('ENGINE_PROTOCOL_ERROR', `engine assigned a tag to vm ${vmId} without returning it`);
  }
  return parseTag(entityOf(reply, `tag assigned to vm ${vmId}`));
}

export async function unassignTag(conn: EngineConnection, vmId: string, tagId: string, opts: EngineCallOptions = {}): Promise<void> {
  await conn.request({ ...opts, method: 'DELETE', path: `/vms/${seg(vmId)}/tags/${seg(tagId)}` });
}
