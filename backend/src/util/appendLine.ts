import type { promises as fs } from 'fs';

/**
 * Where the next line of an append-only JSON-lines file opened O_RDWR | O_APPEND will start, and
 * whether the file ends in a line a crash cut short: a new record written straight after such a
 * line would be glued to it and lost to every reader, so the writer puts a newline first.
 * Readers skip empty lines (two writers that both saw the cut add one newline each).
 */
export async function appendPosition(fh: fs.FileHandle): Promise<{ end: number; cut: boolean }> {
  const end = (await fh.stat()).size;
  if (end === 0) return { end, cut: false };
  const last = Buffer.alloc(1);
  const { bytesRead } = await fh.read(last, 0, 1, end - 1);
  return { end, cut: bytesRead === 1 && last[0] !== 0x0a };
}
