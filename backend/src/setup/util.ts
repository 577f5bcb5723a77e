import { promises as fs } from 'fs';

/** A non-empty string, else undefined (values read loosely from an existing config). */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A file's text; undefined when it does not exist. */
export async function readText(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}
