import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Authenticator, createApp, DeletedVms, EventHub, listen, NextMethods, Permits, ScrapeAccess, type ApiCatalog } from './api';
import { AuditSync, Catalog, DamageView, pointBootCheck, syncBootChecks, syncCatalog } from './catalog';
import { describeConfig, ENV_REPO_PASSPHRASE, syncCacheDirOf, type ServiceConfig } from './config';
import { EngineClient } from './engine';
import { AppError, describeError, isAppError } from './errors';
import { HostDirectory, LocalHost } from './hosts';
import { backupRunner, bootCheckRunner, byKind, FileSessions, JobQueue, JobsTable, restoreRunner, SETTLE_HOLD_MS, settleInterruptedJobs, syncRunner, verifyRunner } from './jobs';
import { initRepo, openRepo, parseRepoLocation, remoteStatus, s3ConfigOf, type RemoteRepoOptions, type Repository, type RepoSpec } from './repository';
import { BrowseSession, PointImages, PointRestorer } from './restore';
import { BootCheckScheduler, GcScheduler, ownerCheck, PoliciesTable, policyRetention, PolicyService, policySync, Scheduler, VerifyScheduler, type RetentionHook } from './schedule';
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
 * The only place where concrete parts meet (README, "The house"): catalog, repository, the
 * service account's engine client, the host links, the job queue and its runners, the
 * schedulers, the HTTP API and its WebSocket hub. It builds and connects them; what each does
 * is in its own module.
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

    const repository = await openOrInitRepository(config, log);
    cleanups.push(() => repository.close());
    await logStore(config, log);
    const catalog = Catalog.open(config.catalog.path);
    cleanups.push(() => catalog.close());
    const jobs = new JobsTable(catalog.db);
    const policyStore = new PoliciesTable(catalog.db);
    const synced = await syncCatalog(catalog, repository);
    log.info({ ...synced, ...(await syncBootChecks(catalog, repository)) }, 'catalog in step with the repository');
    const audit = new AuditSync(catalog, repository, path.join(config.dataDir, 'audit.log'), (msg, err) => log.warn(err === undefined ? {} : { err: describeError(err) }, msg));
    cleanups.push(() => audit.stop());
    await audit.run().then(
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
    const restorer = new PointRestorer({ engine, repository });
    const queue = new JobQueue({
      store: jobs,
      limits: config.limits,
      runner: byKind({
        backup: backupRunner({ engine, repository, host: hosts, scratchDir: config.scratch.path, onPoint: (m) => catalog.points.indexPoint(m), minLockDays: config.protection.minLockDays, defaultMethod: config.backup.method }),
        restore: restoreRunner(restorer),
        verify: verifyRunner({ repository, onVerified: () => damage.invalidate() }),
        bootcheck: bootCheckRunner({
          repository,
          timeoutMs: config.bootCheck.timeoutSeconds * 1000,
          ...(config.bootCheck.expect !== null ? { expect: new RegExp(config.bootCheck.expect) } : {}),
          workDir: config.scratch.path,
          log: log.child({ component: 'boot-check' }),
          onChecked: (r) => catalog.points.setBootCheck(r.pointId, pointBootCheck(r)),
        }),
        sync: syncRunner({ repository, openDestination: (to) => openSyncDestination(config, to) }),
      }),
      onLog: (job, level, message) => childFor(log, { jobId: job.id, vmId: job.vmId })[level](message),
    });
    cleanups.push(() => queue.stop(STOP_GRACE_MS));
    let settled: Promise<void> = Promise.resolve();
    const interrupted = queue.start(() => {
      // the interrupted jobs and those an earlier start-up could not settle (an engine that did
      // not answer)
      const unsettled = jobs.unsettledJobs();
      if (unsettled.length === 0) return;
      // in the background: the service must answer while the engine is slow
      settled = settleInterruptedJobs(unsettled, jobs, engine).catch((err: unknown) => log.warn({ err: describeError(err) }, 'settling interrupted jobs failed'));
      // a queued backup of one of these VMs would meet the engine's lock on it
      queue.hold(
        unsettled.map((j) => j.vmId),
        settled,
        SETTLE_HOLD_MS,
      );
    });
    if (interrupted.length > 0) log.warn({ jobs: interrupted.map((j) => j.id) }, 'jobs that were running when the service stopped are marked interrupted');

    // after the queue's start and the settling of interrupted jobs (a VM one of them started is
    // stopped before a policy run's retry starts it again)
    const scheduler = new Scheduler({
      store: policyStore,
      jobs,
      queue,
      engine,
      log: log.child({ component: 'scheduler' }),
      retention: afterRun(policyRetention({ repository, jobs, points: catalog.points, log }), policySync({ queue, jobs, log: log.child({ component: 'policy-sync' }) })),
      authorize: (policy) => ownerCheck(engine, policy, config.auth.backupAdmins),
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
    const bootCheckScheduler = new BootCheckScheduler({
      store: policyStore,
      queue,
      newestPoint: (vmId) => catalog.points.lastPointByVm([vmId]).get(vmId),
      lastBootCheckAt: (vmId) => catalog.points.listPoints({ vmId }).reduce<string | null>((at, p) => (p.bootCheck && (at === null || p.bootCheck.at > at) ? p.bootCheck.at : at), null),
      bootCheckPending: (vmId) => jobs.listJobs({ vmIds: [vmId], states: ['queued', 'running'], limit: 100 }).jobs.some((j) => j.kind === 'bootcheck'),
      engine,
      log: log.child({ component: 'bootcheck-scheduler' }),
    });
    cleanups.push(() => bootCheckScheduler.stop());
    void settled.then(() => bootCheckScheduler.start());
    const policies = new PolicyService({ store: policyStore, scheduler, verifyScheduler, bootCheckScheduler, engine, log, syncS3Configured: config.sync.s3 !== null });
    if (config.repository.gcSchedule !== null) {
      const gc = new GcScheduler({
        repository,
        lastGc: () => catalog.audit.lastOf('gc'),
        engine,
        schedule: config.repository.gcSchedule,
        timeZone: config.repository.gcTimeZone,
        log: log.child({ component: 'gc-scheduler' }),
      });
      cleanups.push(() => gc.stop());
      gc.start();
    }

    const auth = new Authenticator({
      engineFor: (token) =>
        new EngineClient({ baseUrl: config.engine.url, caFile: config.engine.caFile, timeoutMs: config.engine.timeoutSeconds * 1000, auth: { kind: 'bearer', token }, filter: true }),
      cacheMs: config.auth.cacheSeconds * 1000,
    });
    cleanups.push(() => auth.close());
    const permits = new Permits({ auth, cacheMs: config.auth.permitCacheSeconds * 1000, backupAdmins: config.auth.backupAdmins });
    const scrape = new ScrapeAccess(config.auth.scrapeToken, auth, async (token) => permits.isBackupAdmin(await auth.authenticate(token)));
    // the operator CLI writes no catalog: a point it unlocked or deleted shows so in the portal
    // within this time
    audit.follow(AUDIT_FOLLOW_MS, () => auth.forgetVmLists());
    // a finished backup changes what the VM list shows
    queue.on('job', (job) => {
      if (job.state === 'succeeded') auth.forgetVmLists();
    });
    const apiCatalog = catalogForApi(catalog, jobs, policyStore);
    const deleted = new DeletedVms({ serviceEngine: engine, catalog: apiCatalog, repository, permits, log });
    const files = new FileSessions({
      open: (req) => BrowseSession.open({ repository, pointId: req.pointId, ...(req.disks ? { disks: req.disks } : {}), actor: req.actor, workDir: config.scratch.path, log: log.child({ component: 'file-restore' }) }),
      idleMs: config.fileRestore.idleSeconds * 1000,
      maxSessions: config.fileRestore.maxSessions,
      audit: (r) => audit.serviceAudit.record('file-restore', { actor: r.actor, pointId: r.pointId, vmKey: r.vmId, reason: r.action, details: r.details }),
      log: log.child({ component: 'file-restore' }),
    });
    cleanups.push(() => files.closeAll());
    const app = createApp({
      restore: restorer,
      images: new PointImages(repository, config.scratch.path),
      auth,
      permits,
      scrape,
      deleted,
      catalog: apiCatalog,
      queue,
      policies,
      repository,
      repositoryPath: config.repository.path,
      serviceAudit: audit.serviceAudit,
      audit,
      damage,
      serviceEngine: engine,
      files,
      fileIdleSeconds: config.fileRestore.idleSeconds,
      nextMethods: new NextMethods({ defaultMethod: config.backup.method, hostLinked: hostLinked(hosts) }, engine),
      version,
      startedAt: new Date(),
      corsOrigins: config.cors.origins,
      tls: config.listen.tls !== undefined,
      log,
    });
    const hub = new EventHub({ auth, queue, catalog: apiCatalog, corsOrigins: config.cors.origins, log, audit: audit.serviceAudit, deleted, heartbeatMs: config.listen.heartbeatSeconds * 1000 });
    const server = await listen(app, hub, {
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

/**
 * The embedded default: a repository that does not exist yet is created in the configured format,
 * encrypted with the configured passphrase if asked (an existing one is never re-initialised and
 * keeps its own). An encrypted repository the passphrase does not open, or that has none, stops
 * the start-up with a message naming where the passphrase is configured.
 */
async function openOrInitRepository(config: ServiceConfig, log: Logger): Promise<Repository> {
  const c = config.repository;
  const spec = repoSpecOf(c);
  const where = c.s3 ? `s3://${c.s3.bucket}/${c.s3.prefix}` : c.path;
  // the service is the repository's one writer: a second service on the same prefix refuses to start
  const remote: RemoteRepoOptions = c.s3
    ? {
        mode: 'writer',
        holder: `${os.hostname()}:${process.pid}:service`,
        requireObjectLock: config.protection.requireObjectLock,
        objectLockMode: config.protection.objectLockMode,
      }
    : {};
  const secret = c.passphrase === undefined ? {} : { passphrase: c.passphrase };
  if (!c.s3) {
    try {
      await fs.access(path.join(c.path, 'config.json'));
    } catch {
      return createRepository(spec, c, remote, log);
    }
  }
  const source = c.passphraseFile !== undefined ? `repository.passphraseFile (${c.passphraseFile})` : ENV_REPO_PASSPHRASE;
  let repository: Repository;
  try {
    repository = await openRepo(spec, { ...remote, ...secret });
  } catch (err) {
    // an empty prefix (or no bucket yet): the service makes its repository there, as in a directory
    if (c.s3 && (isAppError(err, 'REPO_NOT_FOUND') || isAppError(err, 'STORE_BUCKET_MISSING'))) return createRepository(spec, c, remote, log);
    if (isAppError(err, 'REPO_KEY_REQUIRED')) {
      throw new AppError('REPO_KEY_REQUIRED', `repository ${where} is encrypted and no passphrase is configured: set repository.passphraseFile or ${ENV_REPO_PASSPHRASE}`);
    }
    if (isAppError(err, 'REPO_KEY_WRONG')) throw new AppError('REPO_KEY_WRONG', `the passphrase from ${source} does not open repository ${where}`, { cause: err });
    throw err;
  }
  if (c.encryption !== 'none' && !repository.encrypted) {
    log.warn({ repository: where }, `repository.encryption is ${c.encryption} but the existing repository is not encrypted: the setting applies only to a repository the service creates`);
  }
  return repository;
}

/** A run's end: its retention, then its off-site copy (a point the retention pruned is not copied). */
function afterRun(retention: RetentionHook, sync: RetentionHook): RetentionHook {
  return async (policy, run, vms) => {
    try {
      await retention(policy, run, vms);
    } finally {
      await sync(policy, run, vms);
    }
  };
}

/** On object storage: the bucket's Object Lock and the writer lease (this service's) in the log. */
async function logStore(config: ServiceConfig, log: Logger): Promise<void> {
  const s3 = config.repository.s3;
  if (!s3) return;
  const { location, objectLock, writer } = await remoteStatus(s3ConfigOf(s3));
  const { requireObjectLock, objectLockMode } = config.protection;
  log.info({ repository: location, cache: s3.cacheDir, objectLock, writer, requireObjectLock, objectLockMode }, 'repository on object storage opened as its writer');
}

/** The embedded default's first start: the repository in the configured format and encryption;
 *  on object storage with Object Lock in protection.objectLockMode unless it is not required. */
async function createRepository(spec: RepoSpec, c: ServiceConfig['repository'], remote: RemoteRepoOptions, log: Logger): Promise<Repository> {
  log.info({ repository: c.s3 ? `s3://${c.s3.bucket}/${c.s3.prefix}` : c.path, format: c.format, encryption: c.encryption }, 'creating the repository');
  const objectLock = remote.requireObjectLock === false ? 'off' : (remote.objectLockMode ?? 'compliance');
  return initRepo(spec, {
    version: c.format,
    ...(c.encryption === 'none' ? {} : { encryption: c.encryption, passphrase: c.passphrase ?? '' }),
    ...(c.s3 ? { ...remote, objectLock } : {}),
  });
}

/**
 * A policy's syncTo: a directory, or s3://BUCKET/PREFIX reached with sync.s3 through its own cache
 * under sync.cacheDir, as that store's writer (the lease names this service's sync) with Object
 * Lock as protection.* asks. An encrypted destination opens with the service repository's passphrase.
 */
async function openSyncDestination(config: ServiceConfig, to: string): Promise<Repository> {
  const secret = config.repository.passphrase === undefined ? {} : { passphrase: config.repository.passphrase };
  const where = parseRepoLocation(to);
  if (where.kind === 'local') return openRepo({ kind: 'local', dir: where.dir }, secret);
  const s3 = config.sync.s3;
  // saved before the config lost its sync.s3: the job fails saying why
  if (s3 === null) throw new AppError('CONFIG_INVALID', `${to}: the service has no S3 connection settings for a sync destination (sync.s3 in its config file)`);
  const spec: RepoSpec = { kind: 's3', s3: s3ConfigOf({ ...s3, bucket: where.bucket, prefix: where.prefix }), cacheDir: syncCacheDirOf(config.sync.cacheDir, where.bucket, where.prefix) };
  return openRepo(spec, {
    ...secret,
    mode: 'writer',
    holder: `${os.hostname()}:${process.pid}:service-sync`,
    requireObjectLock: config.protection.requireObjectLock,
    objectLockMode: config.protection.objectLockMode,
  });
}

/** The configured repository as the repository layer names it: a directory, or repository.s3
 *  with its cache directory (repository.path is that directory then). */
function repoSpecOf(c: ServiceConfig['repository']): RepoSpec {
  const s3 = c.s3;
  if (!s3) return { kind: 'local', dir: c.path };
  return { kind: 's3', s3: s3ConfigOf(s3), cacheDir: s3.cacheDir };
}

/** The API's read view of the catalog file: the point index, job history, policy counts. */
function catalogForApi(c: Catalog, jobs: JobsTable, policies: PoliciesTable): ApiCatalog {
  return {
    listPointsJson: (q) => c.points.listPointsJson(q),
    getPoint: (id) => c.points.getPoint(id),
    lastPointByVm: (ids) => c.points.lastPointByVm(ids),
    pointCountByVm: (ids) => c.points.pointCountByVm(ids),
    vmsWithPoints: () => c.points.vmsWithPoints(),
    repositoryTotals: () => c.points.repositoryTotals(),
    getJob: (id) => jobs.getJob(id),
    listJobs: (q) => jobs.listJobs(q),
    lastJobByVm: (ids) => jobs.lastJobByVm(ids),
    jobLog: (id) => jobs.jobLog(id),
    jobFacts: (id) => jobs.jobFacts(id),
    jobCounts: () => jobs.jobCounts(),
    jobTotals: () => jobs.jobTotals(),
    ping: () => c.ping(),
    policyOutcomes: () => policies.outcomeCounts(),
    policyRuns: () => policies.runCounts(),
  };
}

/** Whether the host link reaches a host (the `auto` method's choice): a local QMP directory
 *  serves any host; a hosts file, the hosts it has an entry for (or its "*" default). */
function hostLinked(hosts: LocalHost | HostDirectory): ((address: string) => boolean) | true {
  if (!(hosts instanceof HostDirectory)) return true;
  return (address) => {
    try {
      hosts.linkFor(address); // builds the link object only: no connection is made
      return true;
    } catch {
      return false;
    }
  };
}
