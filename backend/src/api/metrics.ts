import type { RequestHandler } from 'express';
import type { ApiCatalog } from './deps';

const DURATION_BUCKETS_S = [10, 30, 60, 300, 900, 1800, 3600, 7200, 14400];

/** HTTP answers by status class, counted in memory (they restart with the service, as
 *  Prometheus counters may). */
export class HttpCounters {
  private readonly counts = new Map<string, number>();

  middleware(): RequestHandler {
    return (_req, res, next) => {
      res.on('finish', () => {
        const k = `${Math.floor(res.statusCode / 100)}xx`;
        this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
      });
      next();
    };
  }

  entries(): Array<[string, number]> {
    return [...this.counts.entries()].sort();
  }
}

/**
 * Prometheus text exposition. Job and byte figures come from the catalog, so they survive a
 * restart of the service (counters that only grow, as Prometheus expects).
 */
export function renderMetrics(catalog: ApiCatalog, http: HttpCounters, uptimeSeconds: number): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: Array<[string, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`);
  };
  const counts = catalog.jobCounts();
  metric('olvm_backup_jobs', 'gauge', 'Backup jobs in the catalog by state.', Object.entries(counts).map(([s, n]) => [`{state="${s}"}`, n]));
  const totals = catalog.jobTotals();
  metric('olvm_backup_read_bytes_total', 'counter', 'Bytes read from VM disks by succeeded backups.', [['', totals.bytesRead]]);
  metric('olvm_backup_stored_bytes_total', 'counter', 'Compressed bytes added to the repository by succeeded backups.', [['', totals.bytesStored]]);
  const secs = totals.durationsMs.map((ms) => ms / 1000);
  lines.push('# HELP olvm_backup_job_duration_seconds Duration of the last succeeded backups (up to 1000).', '# TYPE olvm_backup_job_duration_seconds histogram');
  for (const b of DURATION_BUCKETS_S) lines.push(`olvm_backup_job_duration_seconds_bucket{le="${b}"} ${secs.filter((s) => s <= b).length}`);
  lines.push(`olvm_backup_job_duration_seconds_bucket{le="+Inf"} ${secs.length}`);
  lines.push(`olvm_backup_job_duration_seconds_sum ${secs.reduce((a, b) => a + b, 0).toFixed(3)}`);
  lines.push(`olvm_backup_job_duration_seconds_count ${secs.length}`);
  const repo = catalog.repositoryTotals();
  metric('olvm_backup_repository_points', 'gauge', 'Restore points in the repository.', [['', repo.pointCount]]);
  metric('olvm_backup_repository_used_bytes', 'gauge', 'Compressed bytes in the chunk store.', [['', repo.usedBytes]]);
  metric('olvm_backup_repository_logical_bytes', 'gauge', 'Sum of the disk sizes of every restore point.', [['', repo.logicalBytes]]);
  metric('olvm_backup_repository_chunks', 'gauge', 'Chunks in the chunk store.', [['', repo.chunkCount]]);
  const label = (s: string): string => s.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
  metric('olvm_backup_policy_vm_outcomes_total', 'counter', 'VMs of policy runs by policy and outcome.', (catalog.policyOutcomes?.() ?? []).map((o) => [`{policy="${label(o.policy)}",outcome="${o.state}"}`, o.n]));
  metric('olvm_backup_policy_runs_total', 'counter', 'Policy runs by policy and trigger (schedule, catch-up, manual).', (catalog.policyRuns?.() ?? []).map((o) => [`{policy="${label(o.policy)}",trigger="${o.trigger}"}`, o.n]));
  metric('olvm_backup_http_responses_total', 'counter', 'HTTP responses by status class since the service started.', http.entries().map(([k, v]) => [`{code="${k}"}`, v]));
  metric('olvm_backup_uptime_seconds', 'gauge', 'Seconds since the service started.', [['', uptimeSeconds]]);
  return `${lines.join('\n')}\n`;
}
