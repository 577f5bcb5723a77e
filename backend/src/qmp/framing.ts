import { AppError } from '../errors';

/**
 * QMP frames: one JSON object per line. QEMU terminates every message with "\r\n" and JSON
 * escapes newlines inside strings, so a newline is always a frame boundary. Bytes are kept as
 * Buffers until a whole line is present so multi-byte UTF-8 split across reads stays intact.
 */
export class LineDecoder {
  private pending: Buffer[] = [];
  private pendingLength = 0;

  constructor(private readonly maxLineBytes = 64 * 1024 * 1024) {}

  /** Feeds bytes; returns the complete messages they finish, parsed. */
  push(data: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = data.subarray(start, nl);
      const line = this.pendingLength > 0 ? Buffer.concat([...this.pending, piece]) : piece;
      this.pending = [];
      this.pendingLength = 0;
      start = nl + 1;
      const text = line.toString('utf8').trim();
      if (text.length === 0) continue;
      try {
        out.push(JSON.parse(text));
      } catch (err) {
        throw new AppError('QMP_PROTOCOL_ERROR', `qmp sent a line that is not json: ${text.slice(0, 200)}`, { cause: err });
      }
    }
    if (start < data.length) {
      this.pending.push(data.subarray(start));
      this.pendingLength += data.length - start;
      if (this.pendingLength > this.maxLineBytes) {
        throw new AppError('QMP_PROTOCOL_ERROR', `qmp message longer than ${this.maxLineBytes} bytes`);
      }
    }
    return out;
  }
}

export function encodeMessage(msg: object): string {
  return JSON.stringify(msg) + '\n';
}
