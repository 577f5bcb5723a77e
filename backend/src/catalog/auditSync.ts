import type { Repository } from '../repository';
import { auditOriginKey, type AuditQuery } from './audit';
import { AuditImporter } from './auditImport';
import type { Catalog } from './catalog';
import type { AuditList } from './model';
import { PointFollower } from './pointFollower';
import { ServiceAuditLog } from './serviceAudit';

/**
 * Keeps the catalog's audit table — and through it the point index — in step with the two audit
 * files, which stay the truth: a service record goes to its file, then to the table; the
 * repository's file (written by the operator's CLI too, even while the service is down) and any
 * service record the table missed are imported at start-up, every `follow` period and before
 * each read. Lock changes and deletions those records name reach the point index (PointFollower).
 */
export class AuditSync {
  readonly serviceAudit: ServiceAuditLog;
  private readonly importers: AuditImporter[];
  private readonly follower: PointFollower;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly catalog: Catalog,
    repository: Repository,
    serviceAuditFile: string,
    private readonly warn: (msg: string, err?: unknown) => void,
  ) {
    this.serviceAudit = new ServiceAuditLog(serviceAuditFile, (msg) => warn(msg), (entry, at) =>
      catalog.audit.add([{ ...entry, originKey: auditOriginKey(at.offset, at.line) }]),
    );
    this.importers = [new AuditImporter(catalog.audit, 'repository', repository.auditFile), new AuditImporter(catalog.audit, 'service', serviceAuditFile)];
    // built before the first import: what is imported from now on (also what was written while
    // the service was down) is followed
    this.follower = new PointFollower(catalog, repository);
  }

  /** Imports what the files gained; re-indexes the points the new records name. Rows added. */
  async run(): Promise<number> {
    let added = 0;
    for (const i of this.importers) added += await i.run();
    if (added > 0) await this.follower.apply();
    return added;
  }

  /** Imports every `ms` in the background; `onAdded` after a pass that added rows (caches of
   *  point lists to forget). A failing pass is reported, the next one tries again. */
  follow(ms: number, onAdded: () => void): void {
    this.stop();
    this.timer = setInterval(() => {
      this.run().then(
        (added) => added > 0 && onAdded(),
        (err: unknown) => this.warn('copying the audit log into the catalog failed', err),
      );
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A page of the audit log, with what the CLI appended since the last pass already in it. */
  async list(q: AuditQuery): Promise<AuditList> {
    await this.serviceAudit.flushed();
    await this.run();
    return this.catalog.audit.list(q);
  }
}
