import { AppError } from '../errors';
import type { BitmapRef, WireBlockNode, WireDirtyBitmap, WireTransactionAction } from './commands';
import type { QmpCallOptions, QmpSession } from './session';
import { waitForEvent } from './client';

/** A dirty bitmap as the backup sees it. `inconsistent` is absent on the wire unless true. */
export interface DirtyBitmap {
  /** '' for a block job's anonymous internal bitmap */
  name: string;
  dirtyBytes: number;
  granularity: number;
  recording: boolean;
  busy: boolean;
  persistent: boolean;
  inconsistent: boolean;
}

/** A guest-visible disk: its device, the node the guest writes to, and that node's state. */
export interface BlockDevice {
  /** qdev id (`virtio-disk0`) — stable across QEMU restarts; '' when QEMU gave none. */
  deviceId: string;
  /** full qdev path, as HMP `qemu-io -d` and `qom-set` want it */
  qdevPath: string;
  /** top node the device reads through (the bitmap and the backup job go here) */
  nodeName: string;
  format: string;
  virtualSize: number;
  readOnly: boolean;
  filename: string;
  /** qcow2 v3 stores bitmaps in the image; raw and qcow2 v2 cannot (transient only) */
  canPersistBitmaps: boolean;
  bitmaps: DirtyBitmap[];
}

export type BitmapSource = string | { node: string; name: string };

/** Transaction actions, camelCase; mapped to QMP's wire form below. */
export type BlockAction =
  | { kind: 'bitmapAdd'; node: string; name: string; persistent: boolean; disabled?: boolean }
  | { kind: 'bitmapRemove'; node: string; name: string }
  | { kind: 'bitmapClear'; node: string; name: string }
  | { kind: 'bitmapEnable'; node: string; name: string }
  | { kind: 'bitmapDisable'; node: string; name: string }
  | { kind: 'bitmapMerge'; node: string; target: string; sources: BitmapSource[] }
  | { kind: 'fleeceBackup'; jobId: string; device: string; target: string };

/**
 * The block-layer operations the backup uses, in camelCase. Everything QMP-specific (command
 * names, hyphenated keys, which query lists which node) stays here.
 */
export class BlockApi {
  constructor(private readonly qmp: QmpSession) {}

  /** Guest disks with their top node, from query-block joined with query-named-block-nodes
   *  (query-block alone misses bitmaps' details on some nodes; named nodes miss the device). */
  async listDevices(opts?: QmpCallOptions): Promise<BlockDevice[]> {
    const [blocks, nodes] = await Promise.all([
      this.qmp.execute('query-block', {}, opts),
      this.qmp.execute('query-named-block-nodes', { flat: true }, opts),
    ]);
    const byName = new Map<string, WireBlockNode>(nodes.map((n) => [n['node-name'], n]));
    const out: BlockDevice[] = [];
    for (const b of blocks) {
      const ins = b.inserted;
      if (!ins) continue; // empty CD-ROM drive and the like
      const node = byName.get(ins['node-name']);
      const qdevPath = b.qdev ?? '';
      out.push({
        deviceId: deviceIdFromQdev(qdevPath) || b.device,
        qdevPath,
        nodeName: ins['node-name'],
        format: node?.drv ?? ins.drv,
        virtualSize: node?.image['virtual-size'] ?? ins.image['virtual-size'],
        readOnly: node?.ro ?? ins.ro,
        filename: node?.file ?? ins.file,
        canPersistBitmaps: (node?.drv ?? ins.drv) === 'qcow2' && node?.image['format-specific']?.data?.compat !== '0.10',
        bitmaps: (node?.['dirty-bitmaps'] ?? ins['dirty-bitmaps'] ?? []).map(toBitmap),
      });
    }
    return out;
  }

  async bitmaps(nodeName: string, opts?: QmpCallOptions): Promise<DirtyBitmap[]> {
    const nodes = await this.qmp.execute('query-named-block-nodes', { flat: true }, opts);
    const node = nodes.find((n) => n['node-name'] === nodeName);
    if (!node) throw new AppError('QMP_COMMAND_FAILED', `block node ${nodeName} not found`);
    return (node['dirty-bitmaps'] ?? []).map(toBitmap);
  }

  /** Every named node with the file it opens (for finding nodes a crashed run left). */
  async nodes(opts?: QmpCallOptions): Promise<Array<{ nodeName: string; format: string; filename: string }>> {
    const nodes = await this.qmp.execute('query-named-block-nodes', { flat: true }, opts);
    return nodes.map((n) => ({ nodeName: n['node-name'], format: n.drv, filename: n.image.filename }));
  }

  async nodeExists(nodeName: string, opts?: QmpCallOptions): Promise<boolean> {
    const nodes = await this.qmp.execute('query-named-block-nodes', { flat: true }, opts);
    return nodes.some((n) => n['node-name'] === nodeName);
  }

  /** All actions at one instant; if one fails QEMU applies none. */
  async transaction(actions: BlockAction[], opts?: QmpCallOptions): Promise<void> {
    await this.qmp.execute('transaction', { actions: actions.map(toWireAction) }, opts);
  }

  async bitmapRemove(node: string, name: string, opts?: QmpCallOptions): Promise<void> {
    await this.qmp.execute('block-dirty-bitmap-remove', { node, name }, opts);
  }

  /** A qcow2 overlay on an existing scratch file whose backing is a live node: the fleece target. */
  async addOverlay(p: { nodeName: string; filename: string; backingNode: string }, opts?: QmpCallOptions): Promise<void> {
    await this.qmp.execute(
      'blockdev-add',
      {
        driver: 'qcow2',
        'node-name': p.nodeName,
        // named so a later run can find the file behind a leftover overlay: the overlay's own
        // filename is a `json:{...}` pseudo-name once its backing is given here
        file: { driver: 'file', filename: p.filename, 'node-name': overlayFileNode(p.nodeName) },
        backing: p.backingNode,
        discard: 'unmap',
      },
      opts,
    );
  }

  async deleteNode(nodeName: string, opts?: QmpCallOptions): Promise<void> {
    await this.qmp.execute('blockdev-del', { 'node-name': nodeName }, opts);
  }

  /** Starts QEMU's NBD server on a unix socket. Returns false when one is already running
   *  (QEMU has one per process; someone else's export may be live). */
  async nbdServerStart(socketPath: string, opts?: QmpCallOptions): Promise<boolean> {
    try {
      await this.qmp.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socketPath } } }, opts);
      return true;
    } catch (err) {
      if (err instanceof AppError && /already running/i.test(err.message)) return false;
      throw err;
    }
  }

  async nbdServerStop(opts?: QmpCallOptions): Promise<void> {
    await this.qmp.execute('nbd-server-stop', {}, opts);
  }

  async exportAdd(p: { id: string; nodeName: string; exportName: string; bitmaps?: BitmapSource[] }, opts?: QmpCallOptions): Promise<void> {
    const args: { type: 'nbd'; id: string; 'node-name': string; name: string; writable: boolean; bitmaps?: BitmapRef[] } = {
      type: 'nbd',
      id: p.id,
      'node-name': p.nodeName,
      name: p.exportName,
      writable: false,
    };
    if (p.bitmaps && p.bitmaps.length > 0) args.bitmaps = p.bitmaps;
    await this.qmp.execute('block-export-add', args, opts);
  }

  /** `hard` drops connected clients at once (a reader that hangs must not block teardown). */
  async exportDel(id: string, p: { hard: boolean }, opts?: QmpCallOptions): Promise<void> {
    // Deletion completes asynchronously: the node stays in use until BLOCK_EXPORT_DELETED,
    // and deleting the node before that fails. Listen first: the event may beat the reply.
    const stopWaiting = new AbortController();
    const deleted = waitForEvent(this.qmp, (e) => e.event === 'BLOCK_EXPORT_DELETED' && e.data['id'] === id, {
      timeoutMs: opts?.timeoutMs ?? 30_000,
      signal: stopWaiting.signal,
      what: `deletion of nbd export ${id}`,
    });
    deleted.catch(() => undefined);
    try {
      await this.qmp.execute('block-export-del', { id, mode: p.hard ? 'hard' : 'safe' }, opts);
    } catch (err) {
      stopWaiting.abort();
      throw err;
    }
    await deleted;
  }

  async exportIds(opts?: QmpCallOptions): Promise<string[]> {
    const list = await this.qmp.execute('query-block-exports', {}, opts);
    return list.map((e) => e.id);
  }

  async resize(nodeName: string, size: number, opts?: QmpCallOptions): Promise<void> {
    await this.qmp.execute('block_resize', { 'node-name': nodeName, size }, opts);
  }

  /** Runs an HMP command (used for guest-like writes in tests and labs). */
  async hmp(commandLine: string, opts?: QmpCallOptions): Promise<string> {
    return this.qmp.execute('human-monitor-command', { 'command-line': commandLine }, opts);
  }

  /** The job ids QEMU currently knows. */
  async jobIds(opts?: QmpCallOptions): Promise<string[]> {
    const jobs = await this.qmp.execute('query-jobs', {}, opts);
    return jobs.map((j) => j.id);
  }

  get session(): QmpSession {
    return this.qmp;
  }
}

function toBitmap(b: WireDirtyBitmap): DirtyBitmap {
  return {
    name: b.name ?? '',
    dirtyBytes: b.count,
    granularity: b.granularity,
    recording: b.recording,
    busy: b.busy,
    persistent: b.persistent,
    inconsistent: b.inconsistent === true,
  };
}

/** Node name of the protocol (file) node under an overlay added by addOverlay. */
export function overlayFileNode(overlayNode: string): string {
  return `${overlayNode}-file`;
}

/** `/machine/peripheral/virtio-disk0/virtio-backend` → `virtio-disk0`. */
export function deviceIdFromQdev(qdev: string): string {
  const m = /^\/machine\/peripheral\/([^/]+)/.exec(qdev);
  return m?.[1] ?? '';
}

function toWireAction(a: BlockAction): WireTransactionAction {
  switch (a.kind) {
    case 'bitmapAdd':
      return { type: 'block-dirty-bitmap-add', data: { node: a.node, name: a.name, persistent: a.persistent, disabled: a.disabled ?? false } };
    case 'bitmapRemove':
      return { type: 'block-dirty-bitmap-remove', data: { node: a.node, name: a.name } };
    case 'bitmapClear':
      return { type: 'block-dirty-bitmap-clear', data: { node: a.node, name: a.name } };
    case 'bitmapEnable':
      return { type: 'block-dirty-bitmap-enable', data: { node: a.node, name: a.name } };
    case 'bitmapDisable':
      return { type: 'block-dirty-bitmap-disable', data: { node: a.node, name: a.name } };
    case 'bitmapMerge':
      return { type: 'block-dirty-bitmap-merge', data: { node: a.node, target: a.target, bitmaps: a.sources } };
    case 'fleeceBackup':
      // sync:none = copy-before-write only: the target keeps the old data of every cluster the
      // guest overwrites, so reads through it show the disk as of the transaction.
      return { type: 'blockdev-backup', data: { 'job-id': a.jobId, device: a.device, target: a.target, sync: 'none' } };
  }
}

