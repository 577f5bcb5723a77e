import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { Authenticator, createApp, EventHub, listen, type ApiCatalog } from './api';
import { ServiceAuditLog } from './api/auditLog';
import { DamageView } from './api/routes/verify';
import { AuditImporter, auditOriginKey, Catalog, PointFollower, syncCatalog } from './catalog';
import { describeConfig, type ServiceConfig } from './config';
import { EngineClient } from './engine';
import { describeError } from './errors';
import { HostDirectory, LocalHost } from './hosts';
import { backupRunner, JobQueue, JobsTable, planPointRestore, planView, restoreRunner, settleInterruptedJobs, verifyRunner, type JobRunner } from './jobs';
import { Repository } from './repository';
import { PoliciesTable, policyRetention, PolicyService, Scheduler, VerifyScheduler } from './schedule';
import { rawImageStream, restoreToFile } from './restore';
import { childFor, type Logger } from './util/log';

export interface RunningService {
  url: string;
  /** Stops taking requests, interrupts running jobs at a safe point (their cleanup runs),
   *  closes the catalog and the repository. */
  close(): Promise<void>;
}

/** How long a stop waits for running jobs' cleanup (QEMU teardown, bitmap merge-back). */
const STOP_GRACE_MS = 60_000;
/** How often the audit files are looked at for records the service did not write (the CLI's). */
const AUDIT_FOLLOW_MS = 10_000;

/**
 * The only place where concrete parts meet (DESIGN.md §3): catalog, repository, the service
 * account's engine client, the host links, the job queue and its backup runner, the HTTP API
 * and its WebSocket hub.
 */
export async function startService(config: ServiceConfig, log: Logger, version: string): Promise<RunningService> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const closeAll = async (): Promise<void> => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn({ err: describeError(err) }, 'shutdown step failed');
      }
    }
  };
  try {
    log.info({ config: describeConfig(config) }, 'starting');
    for (const w of config.warnings) log.warn(w);
    await fs.mkdir(config.scratch.path, { recursive: true, mode: 0o700 });

    const repository = await openOrInitRepository(config.repository.path, log);
    cleanups.push(() => repository.close());
    const catalog = Catalog.open(config.catalog.path);
    cleanups.push(() => catalog.close());
    const jobs = new JobsTable(catalog.db);
    const policyStore = new PoliciesTable(catalog.db);
    const synced = await syncCatalog(catalog, repository);
    log.info({ ...synced }, 'catalog in step with the repository');
    // the audit files are the truth, the catalog's table their copy to query: a service record
    // goes to its file, then to the table; the repository's (also written by the CLI, even while
    // the service is down) and any service record the table missed are imported
    const serviceAudit = new ServiceAuditLog(
      path.join(config.dataDir, 'audit.log'),
      (msg) => log.warn(msg),
      (entry, at) => catalog.audit.add([{ ...entry, originKey: auditOriginKey(at.offset, at.line) }]),
    );
    const auditImports = [new AuditImporter(catalog.audit, 'repository', repository.auditFile), new AuditImporter(catalog.audit, 'service', serviceAudit.file)];
    // lock changes and deletions the operator CLI made (also while the service was down) reach
    // the point index through the records imported
    const follower = new PointFollower(catalog, repository);
    const importAudit = async (): Promise<number> => {
      let added = 0;
      for (const i of auditImports) added += await i.run();
      if (added > 0) await follower.apply();
      return added;
    };
    await importAudit().then(
      (added) => log.info({ added }, 'audit log copied into the catalog'),
      // not fatal: the audit route tries again, and fails with the cause, on every read
      (err: unknown) => log.warn({ err: describeError(err) }, 'copying the audit log into the catalog failed'),
    );

    const engine = new EngineClient({
      baseUrl: config.engine.url,
      caFile: config.engine.caFile,
      timeoutMs: config.engine.timeoutSeconds * 1000,
      auth: { kind: 'password', user: config.engine.user, password: config.engine.password },
      eventOrigin: 'olvm-backup',
    });
    cleanups.push(() => engine.close());
    const hosts = config.hosts.kind === 'local' ? new LocalHost({ qmpDir: config.hosts.qmpDir }) : HostDirectory.fromFile(config.hosts.directory);
    if (hosts instanceof HostDirectory) cleanups.push(() => hosts.close());

    const damage = new DamageView(() => repository.damagedPoints());
    const runners: Record<'backup' | 'restore' | 'verify', JobRunner> = {
      backup: backupRunner({ engine, repository, host: hosts, scratchDir: config.scratch.path, onPoint: (m) => catalog.points.indexPoint(m) }),
      restore: restoreRunner({ engine, repository }),
      verify: verifyRunner({ repository, onVerified: () => damage.invalidate() }),
    };
    const queue = new JobQueue({
      store: jobs,
      limits: config.limits,
      runner: (ctx) => runners[ctx.job.kind](ctx),
      onLog: (job, level, message) => childFor(log, { jobId: job.id, vmId: job.vmId })[level](message),
    });
    cleanups.push(() => queue.stop(STOP_GRACE_MS));
    const interrupted = queue.start();
    let settled: Promise<void> = Promise.resolve();
    if (interrupted.length > 0) {
      log.warn({ jobs: interrupted.map((j) => j.id) }, 'jobs that were running when the service stopped are marked interrupted');
      // in the background: the service must answer while the engine is slow
      settled = settleInterruptedJobs(interrupted, jobs, engine).catch((err: unknown) => log.warn({ err: describeError(err) }, 'settling interrupted jobs failed'));
    }

    // after the queue's start and the settling of interrupted jobs (a VM one of them started is
    // stopped before a policy run's retry starts it again)
    const scheduler = new Scheduler({
      store: policyStore,
      jobs: jobs,
      queue,
      engine,
      log: log.child({ component: 'scheduler' }),
      retention: policyRetention({ repository, jobs: jobs, points: catalog.points, log }),
    });
    cleanups.push(() => scheduler.stop());
    void settled.then(() => scheduler.start());
    const verifyScheduler = new VerifyScheduler({
      store: policyStore,
      queue,
      verifyPending: (vmId) => jobs.listJobs({ vmIds: [vmId], states: ['queued', 'running'], limit: 100 }).jobs.some((j) => j.kind === 'verify'),
      engine,
      log: log.child({ component: 'verify-scheduler' }),
    });
    cleanups.push(() => verifyScheduler.stop());
    void settled.then(() => verifyScheduler.start());
    const policies = new PolicyService({ store: policyStore, scheduler, verifyScheduler, engine, log });

    const auth = new Authenticator({
      engineBaseUrl: config.engine.url,
      engineCaFile: config.engine.caFile,
      engineTimeoutMs: config.engine.timeoutSeconds * 1000,
      cacheMs: config.auth.cacheSeconds * 1000,
    });
    cleanups.push(() => auth.close());
    // the operator CLI writes no catalog: its records are looked for now and then, so a point it
    // unlocked or deleted shows so in the portal within this time
    const follow = setInterval(() => {
      importAudit().then(
        (added) => added > 0 && auth.forgetVmLists(),
        (err: unknown) => log.warn({ err: describeError(err) }, 'copying the audit log into the catalog failed'),
      );
    }, AUDIT_FOLLOW_MS);
    follow.unref();
    cleanups.push(() => clearInterval(follow));
    const apiCatalog = catalogForApi(catalog, jobs, policyStore);
    const deps = {
      restore: {
        plan: async (pointId: string, body: Parameters<typeof planPointRestore>[2], visible: ReadonlySet<string>) => {
          const { plan, inventory } = await planPointRestore({ engine, repository }, pointId, body);
          return planView(plan, inventory, visible);
        },
      },
      images: {
        raw: (pointId: string, device: string, start: number, end: number) => rawImageStream(repository, pointId, device, start, end),
        qcow2: async (pointId: string, device: string) => {
          const file = path.join(config.scratch.path, `download-${randomBytes(8).toString('hex')}.qcow2`);
          await restoreToFile({ repository, pointId, device, out: file, format: 'qcow2' });
          return { file, size: (await fs.stat(file)).size };
        },
        release: (file: string) => fs.rm(file, { force: true }),
      },
      auth,
      catalog: apiCatalog,
      queue,
      policies,
      repository,
      repositoryPath: config.repository.path,
      serviceAudit,
      audit: {
        // what the CLI appended since the last read shows at once
        list: async (q: Parameters<typeof catalog.audit.list>[0]) => {
          await serviceAudit.flushed();
          await importAudit();
          return catalog.audit.list(q);
        },
      },
      damage,
      serviceEngine: engine,
      version,
      startedAt: new Date(),
      corsOrigins: config.cors.origins,
      tls: config.listen.tls !== undefined,
      log,
    };
    // a finished backup changes what the VM list shows
    queue.on('job', (job) => {
      if (job.state === 'succeeded') auth.forgetVmLists();
    });
    const hub = new EventHub({ auth, queue, catalog: apiCatalog, corsOrigins: config.cors.origins, log, audit: serviceAudit });
    const server = await listen(createApp(deps), hub, {
      host: config.listen.host,
      port: config.listen.port,
      ...(config.listen.tls ? { tlsCert: config.listen.tls.cert, tlsKey: config.listen.tls.key } : {}),
    });
    cleanups.push(() => server.close());
    log.info({ url: server.url }, 'listening');
    return { url: server.url, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The embedded default: a repository that does not exist yet is created (an existing one is
 *  never re-initialised). */
async function openOrInitRepository(dir: string, log: Logger): Promise<Repository> {
  try {
    await fs.access(path.join(dir, 'config.json'));
  } catch {
    log.info({ repository: dir }, 'creating the repository');
    return Repository.init(dir);
  }
  return Repository.open(dir);
}

function catalogForApi(c: Catalog, jobs: JobsTable, policies: PoliciesTable): ApiCatalog {
  return {
    listPointsJson: (q) => c.points.listPointsJson(q),
    getPoint: (id) => c.points.getPoint(id),
    lastPointByVm: (ids) => c.points.lastPointByVm(ids),
    pointCountByVm: (ids) => c.points.pointCountByVm(ids),
    repositoryTotals: () => c.points.repositoryTotals(),
    getJob: (id) => jobs.getJob(id),
    listJobs: (q) => jobs.listJobs(q),
    lastJobByVm: (ids) => jobs.lastJobByVm(ids),
    jobLog: (id) => jobs.jobLog(id),
    jobMeta: (id) => jobs.jobMeta(id),
    jobCounts: () => jobs.jobCounts(),
    jobTotals: () => jobs.jobTotals(),
    ping: () => c.ping(),
    policyOutcomes: () => policies.outcomeCounts(),
    policyRuns: () => policies.runCounts(),
  };
}
