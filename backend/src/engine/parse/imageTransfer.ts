import type { DiskFormat, ImageTransfer, ImageTransferDirection } from '../types';
import { IMAGE_TRANSFER_PHASES } from '../types';
import { Fields, listOf, type Json } from './fields';

const DIRECTIONS: readonly ImageTransferDirection[] = ['upload', 'download'];
const FORMATS: readonly DiskFormat[] = ['cow', 'raw'];

/** `image_transfer` (reference §5.2). */
export function parseImageTransfer(o: Json): ImageTransfer {
  const f = new Fields('image transfer', o);
  return {
    id: f.reqStr('id'),
    phase: f.enumOf('phase', IMAGE_TRANSFER_PHASES, 'unknown') ?? 'unknown',
    direction: f.enumOf('direction', DIRECTIONS),
    format: f.enumOf('format', FORMATS),
    transferUrl: f.str('transfer_url') || undefined,
    proxyUrl: f.str('proxy_url') || undefined,
    active: f.bool('active'),
    transferred: f.int64('transferred'),
    inactivityTimeoutSeconds: f.int('inactivity_timeout'),
    timeoutPolicy: f.str('timeout_policy'),
    hostId: f.refId('host'),
    diskId: f.refId('disk') ?? f.refId('image'),
    backupId: f.refId('backup'),
  };
}

export function parseImageTransfers(body: unknown): ImageTransfer[] {
  return listOf(body, 'image_transfer', 'image transfer list').map(parseImageTransfer);
}
