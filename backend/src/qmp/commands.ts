/**
 * The QMP commands this product sends, with their wire argument and result shapes as
 * introspected on QEMU 7.2 (`query-qmp-schema`, see reference/qemu-bitmaps.md §2). This is the
 * only file where QMP wire names are spelled; the rest of the backend uses `BlockApi`.
 */

export type BitmapRef = string | { node: string; name: string };

export interface WireDirtyBitmap {
  /** absent on a job's internal bitmap (a fleecing job's copy-before-write map) */
  name?: string;
  count: number;
  granularity: number;
  recording: boolean;
  busy: boolean;
  persistent: boolean;
  inconsistent?: boolean;
}

export interface WireBlockNode {
  'node-name': string;
  drv: string;
  file: string;
  ro: boolean;
  image: {
    'virtual-size': number;
    filename: string;
    format: string;
    'backing-image'?: unknown;
    'format-specific'?: { type: string; data?: { compat?: string } };
  };
  'dirty-bitmaps'?: WireDirtyBitmap[];
  'backing_file'?: string;
}

export interface WireBlockInfo {
  device: string;
  qdev?: string;
  type: string;
  removable: boolean;
  locked: boolean;
  inserted?: {
    'node-name': string;
    drv: string;
    file: string;
    ro: boolean;
    image: { 'virtual-size': number; format: string; filename: string };
    'dirty-bitmaps'?: WireDirtyBitmap[];
  };
}

export interface WireJobInfo {
  id: string;
  type: string;
  status: string;
  'current-progress': number;
  'total-progress': number;
  error?: string;
}

export type WireTransactionAction =
  | { type: 'block-dirty-bitmap-add'; data: { node: string; name: string; persistent?: boolean; disabled?: boolean; granularity?: number } }
  | { type: 'block-dirty-bitmap-remove'; data: { node: string; name: string } }
  | { type: 'block-dirty-bitmap-clear'; data: { node: string; name: string } }
  | { type: 'block-dirty-bitmap-enable'; data: { node: string; name: string } }
  | { type: 'block-dirty-bitmap-disable'; data: { node: string; name: string } }
  | { type: 'block-dirty-bitmap-merge'; data: { node: string; target: string; bitmaps: BitmapRef[] } }
  | { type: 'blockdev-backup'; data: WireBlockdevBackup };

export interface WireBlockdevBackup {
  'job-id': string;
  device: string;
  target: string;
  sync: 'top' | 'full' | 'none' | 'incremental' | 'bitmap';
  bitmap?: string;
  'bitmap-mode'?: 'on-success' | 'never' | 'always';
  'auto-finalize'?: boolean;
  'auto-dismiss'?: boolean;
  speed?: number;
}

type Empty = Record<string, never>;

export interface WirePciDevice {
  bus: number;
  slot: number;
  function: number;
  class_info: { class: number; desc?: string };
  id: { vendor: number; device: number };
  qdev_id: string;
  pci_bridge?: { devices?: WirePciDevice[] };
}

export interface QmpCommandMap {
  qmp_capabilities: { args: Empty; result: Empty };
  'query-version': { args: Empty; result: { qemu: { major: number; minor: number; micro: number }; package: string } };
  'query-status': { args: Empty; result: { running: boolean; status: string } };
  'query-block': { args: Empty; result: WireBlockInfo[] };
  'query-named-block-nodes': { args: { flat?: boolean }; result: WireBlockNode[] };
  'query-jobs': { args: Empty; result: WireJobInfo[] };
  transaction: { args: { actions: WireTransactionAction[] }; result: Empty };
  'blockdev-add': { args: Record<string, unknown>; result: Empty };
  'blockdev-del': { args: { 'node-name': string }; result: Empty };
  /** external snapshot: `overlay` (added with backing null) becomes the top over `node` */
  'blockdev-snapshot': { args: { node: string; overlay: string }; result: Empty };
  'block-dirty-bitmap-add': { args: { node: string; name: string; persistent?: boolean; disabled?: boolean }; result: Empty };
  'block-dirty-bitmap-remove': { args: { node: string; name: string }; result: Empty };
  'block-dirty-bitmap-merge': { args: { node: string; target: string; bitmaps: BitmapRef[] }; result: Empty };
  'nbd-server-start': { args: { addr: { type: 'unix'; data: { path: string } } }; result: Empty };
  'nbd-server-stop': { args: Empty; result: Empty };
  'block-export-add': {
    args: { type: 'nbd'; id: string; 'node-name': string; name: string; writable?: boolean; bitmaps?: BitmapRef[] };
    result: Empty;
  };
  'block-export-del': { args: { id: string; mode?: 'safe' | 'hard' }; result: Empty };
  'query-block-exports': { args: Empty; result: Array<{ id: string; type: string; 'node-name': string; 'shutting-down': boolean }> };
  'job-cancel': { args: { id: string }; result: Empty };
  'job-dismiss': { args: { id: string }; result: Empty };
  'job-finalize': { args: { id: string }; result: Empty };
  block_resize: { args: { 'node-name': string; size: number }; result: Empty };
  'human-monitor-command': { args: { 'command-line': string }; result: string };
  stop: { args: Empty; result: Empty };
  cont: { args: Empty; result: Empty };
  quit: { args: Empty; result: Empty };
  /** the boot check's isolation proof: every PCI device of the VM with its class */
  'query-pci': { args: Empty; result: Array<{ bus: number; devices: WirePciDevice[] }> };
  /** `format` since QEMU 7.1 (ppm before, and the default) */
  screendump: { args: { filename: string; format?: 'png' | 'ppm' }; result: Empty };
}

export type QmpCommandName = keyof QmpCommandMap;
export type QmpArgs<K extends QmpCommandName> = QmpCommandMap[K]['args'];
export type QmpResult<K extends QmpCommandName> = QmpCommandMap[K]['result'];
