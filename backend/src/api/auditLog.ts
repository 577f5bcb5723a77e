import { constants, promises as fs } from 'fs';
import type { AuditRecord } from '../repository';
import type { AuditEntry } from './contract';

/** The service's own audit file stops growing here (a flood of bad tokens must not fill the
 *  disk); the repository's audit log is not affected. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** One token refused again and again is recorded once per this period. */
const REPEAT_MS = 60_000;

export interface AuthFailure {
  /** SHA-256 of the token, hex: only a prefix is written. */
  tokenKey: string;
  code: string;
  message: string;
  method: string;
  path: string;
  remote: string | null;
}

/**
 * `<dataDir>/audit.log`: JSON lines the service appends (O_APPEND, one write per record) when it
 * refuses a token (401 with a token). Never the token itself: the first 16 hex digits of its
 * SHA-256, enough to tell tokens apart. The file is never rewritten; it stops growing at 8 MiB.
 */
export class ServiceAuditLog {
  private readonly recent = new Map<string, number>();
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly warn: (msg: string) => void = () => undefined,
  ) {}

  /** Records a refused token (in the background; a failure to write is logged, not thrown). */
  authFailure(f: AuthFailure): void {
    const now = Date.now();
    const key = `${f.tokenKey}:${f.code}`;
    const last = this.recent.get(key);
    if (last !== undefined && now - last < REPEAT_MS) return;
    this.recent.set(key, now);
    if (this.recent.size > 10_000) for (const [k, t] of this.recent) if (now - t >= REPEAT_MS) this.recent.delete(k);
    const entry: AuditEntry = {
      time: new Date(now).toISOString(),
      kind: 'auth-failure',
      source: 'service',
      actor: `token:${f.tokenKey.slice(0, 16)}`,
      pointId: null,
      vmKey: null,
      reason: f.message,
      details: { code: f.code, method: f.method, path: f.path, remote: f.remote },
    };
    this.writing = this.writing.then(() => this.append(entry)).catch((err: unknown) => this.warn(`writing the service audit log ${this.file} failed: ${String(err)}`));
  }

  /** Entries oldest first (`since`: at or after). Lines that are not records are skipped. */
  async read(opts: { since?: Date } = {}): Promise<AuditEntry[]> {
    await this.writing;
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const since = opts.since?.getTime();
    const out: AuditEntry[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const e = JSON.parse(line) as AuditEntry;
        if (typeof e?.time !== 'string' || e.kind !== 'auth-failure') continue;
        if (since !== undefined && !(Date.parse(e.time) >= since)) continue;
        out.push(e);
      } catch {
        continue;
      }
    }
    return out;
  }

  private async append(entry: AuditEntry): Promise<void> {
    const size = await fs.stat(this.file).then((s) => s.size, () => 0);
    if (size >= MAX_FILE_BYTES) return;
    const fh = await fs.open(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    try {
      await fh.write(JSON.stringify(entry) + '\n');
    } finally {
      await fh.close();
    }
  }
}

/** A repository audit record as the API shows it. */
export function repositoryEntry(r: AuditRecord): AuditEntry {
  return {
    time: r.time,
    kind: r.action,
    source: 'repository',
    actor: r.actor,
    pointId: r.pointId ?? null,
    vmKey: r.vmKey ?? null,
    reason: r.reason ?? null,
    details: r.details ?? null,
  };
}
