import type { Migration } from './db';

/**
 * The catalog's schema, one step per release that changed it. Steps are append-only: a shipped
 * step is never edited (databases in the field already ran it); a change is a new step.
 *
 * Times are ISO 8601 UTC strings as `Date.toISOString()` writes them, so they sort as text.
 * JSON columns hold the contract's objects verbatim (progress, result, error) or free-form facts
 * (meta); the columns beside them are what queries filter, sort or sum on.
 */
export const MIGRATIONS: readonly Migration[] = [
  // 1: jobs and their log; the restore point index (rebuildable from the repository).
  `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    vm_id TEXT NOT NULL,
    vm_name TEXT NOT NULL,
    host_id TEXT,
    requested_by_id TEXT NOT NULL,
    requested_by_name TEXT NOT NULL,
    force_full INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    progress TEXT,
    result TEXT,
    error TEXT,
    meta TEXT NOT NULL DEFAULT '{}'
  );
  -- a VM's history page and "last job of each VM"
  CREATE INDEX jobs_vm_created ON jobs (vm_id, created_at, id);
  -- the unfiltered job list, newest first, paged by (created_at, id)
  CREATE INDEX jobs_created ON jobs (created_at, id);
  -- active jobs at start-up, counts by state, and the latest succeeded jobs for metrics
  CREATE INDEX jobs_state ON jobs (state, finished_at);

  CREATE TABLE job_log (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
  ) WITHOUT ROWID;

  CREATE TABLE points (
    id TEXT PRIMARY KEY,
    vm_id TEXT NOT NULL,
    vm_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    completed_at TEXT NOT NULL,
    parent_point_id TEXT,
    consistency TEXT NOT NULL,
    virtual_size INTEGER NOT NULL,
    bytes_read INTEGER NOT NULL,
    bytes_stored INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunks_new INTEGER NOT NULL,
    referenced_chunks INTEGER NOT NULL,
    referenced_bytes INTEGER NOT NULL,
    locked_until TEXT,
    job_id TEXT,
    summary TEXT NOT NULL
  );
  CREATE INDEX points_vm_created ON points (vm_id, created_at, id);
  CREATE INDEX points_created ON points (created_at, id);
  `,
  // 2: restore jobs carry what they restore (point, mode, target)
  `
  ALTER TABLE jobs ADD COLUMN restore TEXT;
  `,
  // 3: backup policies, their runs (one per fire time: a restart neither repeats nor skips one)
  // and each run's VMs (what is done, what is left)
  `
  CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    fired_through TEXT NOT NULL
  );

  CREATE TABLE policy_runs (
    id TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_at TEXT,
    missed_runs INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    window_start TEXT,
    window_end TEXT,
    concurrency INTEGER NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    message TEXT
  );
  -- one run per fire time of a policy
  CREATE UNIQUE INDEX policy_runs_fire ON policy_runs (policy_id, scheduled_at) WHERE scheduled_at IS NOT NULL;
  CREATE INDEX policy_runs_policy ON policy_runs (policy_id, created_at);
  CREATE INDEX policy_runs_state ON policy_runs (state);

  CREATE TABLE policy_run_vms (
    run_id TEXT NOT NULL REFERENCES policy_runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    vm_id TEXT NOT NULL,
    vm_name TEXT NOT NULL,
    host_id TEXT,
    state TEXT NOT NULL,
    job_id TEXT,
    joined INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    fell_back_to_full INTEGER NOT NULL DEFAULT 0,
    finished_at TEXT,
    PRIMARY KEY (run_id, vm_id)
  ) WITHOUT ROWID;
  CREATE INDEX policy_run_vms_job ON policy_run_vms (job_id);
  `,
  // 4: the audit log, a copy of the two append-only audit files (the repository's, which the
  // CLI writes too, and the service's own) to query; the files stay the truth. origin_key names
  // a record's line in its file (byte offset + digest), so importing a line twice adds nothing.
  // audit_import remembers how far each file was read.
  `
  CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('service', 'repository')),
    origin_key TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    vm_key TEXT,
    point_id TEXT,
    reason TEXT,
    details TEXT,
    UNIQUE (source, origin_key)
  );
  -- newest first, paged by (time, seq); since / until
  CREATE INDEX audit_time ON audit (time, seq);
  CREATE INDEX audit_vm ON audit (vm_key, time, seq);
  -- append-only even for this program: a bug or a hand-typed statement cannot rewrite history.
  -- INSERT OR REPLACE deletes without firing delete triggers (recursive_triggers is off by
  -- default), hence the two insert triggers: a record already there is skipped, not replaced
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit table is append-only: its rows are never changed'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit table is append-only: its rows are never deleted'); END;
  CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'the audit table is append-only: its rows are never replaced'); END;
  CREATE TRIGGER audit_once BEFORE INSERT ON audit
    WHEN EXISTS (SELECT 1 FROM audit WHERE source = NEW.source AND origin_key = NEW.origin_key)
    BEGIN SELECT RAISE(IGNORE); END;

  CREATE TABLE audit_import (
    source TEXT PRIMARY KEY,
    read_to INTEGER NOT NULL,
    head TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  // 5: a policy's verify schedule has its own fire-time watermark (null: as fired_through)
  `
  ALTER TABLE policies ADD COLUMN verify_fired_through TEXT;
  `,
  // 6: a job's spec (what it was asked to do: jobs/spec.ts, typed and versioned) gets a column of
  // its own; `meta` keeps only the facts runners remember. Rows of older versions carried their
  // spec in meta under loose keys: converted here once.
  `
  ALTER TABLE jobs ADD COLUMN spec TEXT;
  UPDATE jobs SET spec = CASE kind
    WHEN 'backup' THEN json_object(
      'v', 1, 'kind', 'backup',
      'forceFull', json(CASE WHEN force_full != 0 THEN 'true' ELSE 'false' END),
      'consistency', CASE WHEN json_extract(meta, '$.consistency') = 'crash' THEN 'crash' ELSE 'auto' END,
      'lockDays', 0,
      'origin', CASE WHEN json_extract(meta, '$.policyId') IS NULL THEN NULL ELSE json_object(
        'policyId', json_extract(meta, '$.policyId'),
        'policyName', coalesce(json_extract(meta, '$.policyName'), ''),
        'runId', json_extract(meta, '$.policyRunId'),
        'trigger', coalesce(json_extract(meta, '$.trigger'), 'schedule'),
        'scheduledAt', NULL) END)
    WHEN 'restore' THEN json_object(
      'v', 1, 'kind', 'restore',
      'pointId', json_extract(restore, '$.pointId'),
      'request', json(coalesce(json_extract(meta, '$.request'), json_object('mode', json_extract(restore, '$.mode')))),
      'target', json_extract(restore, '$.target'))
    WHEN 'verify' THEN json_object(
      'v', 1, 'kind', 'verify',
      'target', CASE
        WHEN json_extract(meta, '$.pointId') IS NOT NULL THEN json_object('pointId', json_extract(meta, '$.pointId'))
        WHEN json_extract(meta, '$.vmKey') IS NOT NULL THEN json_object('vmKey', json_extract(meta, '$.vmKey'))
        ELSE json_object('repository', json('true')) END,
      'origin', CASE WHEN json_extract(meta, '$.policyId') IS NULL THEN NULL ELSE json_object(
        'policyId', json_extract(meta, '$.policyId'),
        'policyName', '',
        'runId', NULL,
        'trigger', coalesce(json_extract(meta, '$.trigger'), 'schedule'),
        'scheduledAt', json_extract(meta, '$.verifyScheduledAt')) END)
  END;
  `,
  // 7: a point's summary names the method that made it (PointSummary.method); points indexed
  // before the engine method existed were all made through QMP
  `
  UPDATE points SET summary = json_set(summary, '$.method', 'qmp') WHERE json_extract(summary, '$.method') IS NULL;
  `,
  // 8: a point's summary shows its last boot check (PointSummary.bootCheck); the service's
  // start-up fills it from the repository's records (catalog/rebuild.ts syncBootChecks)
  `
  UPDATE points SET summary = json_set(summary, '$.bootCheck', json('null')) WHERE json_type(summary, '$.bootCheck') IS NULL;
  `,
];
