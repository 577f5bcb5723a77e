import { readFileSync } from 'fs';
import * as path from 'path';

/** The product version from package.json (dist/backend/src/util → the project root). */
export function productVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../../../package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
