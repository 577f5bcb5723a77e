import { z } from 'zod';
import type * as C from './contract';

/**
 * Schemas of the file-level restore bodies (Browse files…), re-exported by schemas.ts: the
 * OpenAPI description's source and what the API tests check real answers against.
 */
const iso = z.string().datetime({ offset: true });
const count = z.number().int().nonnegative();
const fileType = z.enum(['file', 'directory', 'symlink', 'char-device', 'block-device', 'fifo', 'socket', 'unknown']);

export const FileSessionRequest = z.strictObject({
  /** Only this disk of the point (its device); default every disk. */
  disk: z.string().min(1).max(200).optional(),
  /** Wait up to this many seconds for the appliance before answering (0: answer at once). */
  waitSeconds: z.number().int().min(0).max(120).optional(),
});

export const FileSystemView = z.strictObject({ name: z.string(), type: z.string(), label: z.string().nullable(), size: count.nullable(), mounted: z.boolean(), error: z.string().nullable() });
export const FileSessionView = z.strictObject({
  sessionId: z.string().uuid(),
  pointId: z.string(),
  state: z.enum(['opening', 'ready', 'failed']),
  disks: z.array(z.strictObject({ device: z.string(), applianceDevice: z.string(), size: count })),
  filesystems: z.array(FileSystemView),
  error: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
  openedAt: iso,
  lastUsedAt: iso,
  idleSeconds: count,
});
export const FileEntry = z.strictObject({ name: z.string(), nameB64: z.string(), type: fileType, mode: count, size: count, modifiedAt: iso, uid: count, gid: count, target: z.string().nullable() });
export const FileListResponse = z.strictObject({ filesystem: z.string(), path: z.string(), pathB64: z.string(), entries: z.array(FileEntry), truncated: z.boolean() });
export const FoundFile = z.strictObject({ filesystem: z.string(), path: z.string(), pathB64: z.string(), type: fileType, mode: count, size: count, modifiedAt: iso });
export const FileFindResponse = z.strictObject({ glob: z.string(), results: z.array(FoundFile), truncated: z.boolean() });

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(): T | undefined => undefined;
agree<Same<z.output<typeof FileSessionView>, C.FileSessionView>>();
agree<Same<z.output<typeof FileListResponse>, C.FileListResponse>>();
agree<Same<z.output<typeof FileFindResponse>, C.FileFindResponse>>();
