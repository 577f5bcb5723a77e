import { AppError } from '../errors';
import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { getDisk } from './disks';
import { parseDisk, parseDisks } from './parse/disk';
import { entityOf } from './parse/fields';
import { pollUntil, type PollOptions } from './poll';
import type { Disk, DiskFormat, DiskStatus } from './types';

/** A floating image disk to create (reference §7.1). */
export interface NewDisk {
  /** Fix the disk id (restoring with the ids an OVF references); default: the engine picks. */
  id?: string;
  /** Fix the image (volume) id. */
  imageId?: string;
  name: string;
  description?: string;
  /** Virtual size, bytes. */
  provisionedSize: number;
  /** Sparse qcow2 on block storage: the room allocated up front, bytes. */
  initialSize?: number;
  format: DiskFormat;
  sparse: boolean;
  /** 'incremental' enables the engine's own incremental backup (qcow2 only). */
  backup?: 'incremental' | 'none';
  storageDomainId: string;
  /** Default 'data'. */
  contentType?: string;
}

/**
 * `POST /disks`. The engine answers 202 with the disk `locked` while it creates the volume;
 * wait for `ok` before transferring (waitForDiskStatus). Combinations the engine refuses
 * (raw + incremental, preallocated qcow2 without incremental, raw sparse on block storage)
 * come back as ENGINE_HTTP_ERROR with its words.
 */
export async function addDisk(conn: EngineConnection, d: NewDisk, opts: EngineCallOptions = {}): Promise<Disk> {
  const body: Record<string, unknown> = {
    name: d.name,
    alias: d.name,
    description: d.description ?? '',
    provisioned_size: d.provisionedSize,
    format: d.format,
    sparse: d.sparse,
    content_type: d.contentType ?? 'data',
    storage_domains: { storage_domain: [{ id: d.storageDomainId }] },
  };
  if (d.id !== undefined) body.id = d.id;
  if (d.imageId !== undefined) body.image_id = d.imageId;
  if (d.initialSize !== undefined) body.initial_size = d.initialSize;
  if (d.backup !== undefined) body.backup = d.backup;
  return parseDisk(entityOf(await conn.request({ ...opts, method: 'POST', path: '/disks', body }), `new disk ${d.name}`));
}

/** `DELETE /disks/{id}`: the disk and its data (refused while locked or plugged into a running VM). */
export async function removeDisk(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<void> {
  await conn.request({ ...opts, method: 'DELETE', path: `/disks/${seg(id)}` });
}

/** `GET /disks` (`search` in the engine's language, e.g. `name=web01*`). */
export async function listDisks(conn: EngineConnection, opts: EngineCallOptions & { search?: string; max?: number } = {}): Promise<Disk[]> {
  const query = { search: opts.search, case_sensitive: opts.search !== undefined ? false : undefined, max: opts.max };
  return parseDisks(await conn.request({ ...opts, method: 'GET', path: '/disks', query }));
}

/** Polls the disk until its status is one of `wanted`; a disk that turns `illegal` when that
 *  was not wanted fails at once (ENGINE_DISK_ILLEGAL). */
export async function waitForDiskStatus(conn: EngineConnection, id: string, wanted: readonly DiskStatus[], opts: PollOptions): Promise<Disk> {
  let name = id;
  const disk = await pollUntil(
    conn,
    {
      what: `disk ${id} becoming ${wanted.join('|')}`,
      read: async (call) => {
        const d = await getDisk(conn, id, call);
        name = d.alias || id;
        return d;
      },
      done: (d) => wanted.includes(d.status ?? 'locked') || d.status === 'illegal',
      last: (d) => `last status: ${d?.status ?? 'not read'}`,
    },
    opts,
  );
  if (!disk) throw new AppError('ENGINE_NOT_FOUND', `disk ${name} disappeared`);
  if (!wanted.includes(disk.status ?? 'locked')) {
    throw new AppError('ENGINE_DISK_ILLEGAL', `disk ${name} (${id}) became illegal`, { details: { diskId: id } });
  }
  return disk;
}

/** Polls until the disk no longer exists (404), e.g. after a cancelled upload or a removal. */
export async function waitForDiskGone(conn: EngineConnection, id: string, opts: PollOptions): Promise<void> {
  await pollUntil(
    conn,
    {
      what: `disk ${id} going away`,
      read: (call) => getDisk(conn, id, call),
      done: () => false,
      last: (d) => `last status: ${d?.status ?? 'not read'}`,
      notFoundIsAnswer: true,
    },
    opts,
  );
}
