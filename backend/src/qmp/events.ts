/** A QMP event as QEMU sends it (wire form; only qmp/ reads `data`'s wire keys). */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export type QmpEventListener = (event: QmpEvent) => void;

export function isQmpEvent(msg: Record<string, unknown>): boolean {
  return typeof msg['event'] === 'string';
}
