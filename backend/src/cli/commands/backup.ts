import * as os from 'os';
import type { Command } from 'commander';
import type { BackupMethod, BackupProgress, ConsistencyMode } from '../../backup';
import { BACKUP_METHODS, CONSISTENCY_MODES } from '../../backup/model';
import { AppError } from '../../errors';
import type { Manifest, Repository } from '../../repository';
import { addEngineOptions, engineFromOptions, requireEngineOptions, type EngineOptions } from '../engineOptions';
import { printJson, printLine } from '../output';
import { formatBytes, ProgressBar } from '../progressBar';
import { addRepoOptions, ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP, type RepoFlags } from '../repoFlags';
import { vmFromName } from '../vmIdentity';

interface BackupOptions extends EngineOptions, RepoFlags {
  qmp?: string;
  vm?: string;
  vmId?: string;
  qmpDir?: string;
  hosts?: string;
  scratch: string;
  disk?: string[];
  full?: boolean;
  transientBitmaps?: boolean;
  lockDays: string;
  method?: string;
  consistency?: string;
  allowOtherOwner?: boolean;
  json?: boolean;
}

export function registerBackup(program: Command): void {
  const cmd = addRepoOptions(program.command('backup').description('back up a VM: by its QMP socket (--qmp, --vm) or by its engine id (--engine ... --vm-id)'))
    .option('--qmp <socket>', "the VM's QMP unix socket (a monitor no other client is attached to)")
    .option('--vm <name>', 'the name restore points are filed under (with --qmp)');
  addEngineOptions(cmd, "the engine's base URL, https://<fqdn>/ovirt-engine")
    .option('--vm-id <id>', "the VM's engine id (with --engine)")
    .option('--qmp-dir <dir>', 'where running VMs expose their monitor as <dir>/<vm id>.qmp (with --engine, VMs on this machine)')
    .option('--hosts <file>', 'how to reach each KVM host by its engine address: local, ssh+libvirt or ssh+qmp-socket (JSON, see backend/src/hosts/HOSTS.md)')
    .option('--scratch <dir>', 'directory for fleece images and the NBD socket', os.tmpdir())
    .option('--disk <device...>', 'back up only these device ids (with --qmp)')
    .option('--full', 'copy every disk whole even if an incremental is possible')
    .option('--transient-bitmaps', 'keep bitmaps in QEMU memory only (when another backup product uses the disks)')
    .option('--method <method>', `how an engine backup reads the vm: ${BACKUP_METHODS.join(', ')} (auto: qmp when the vm runs on a host --qmp-dir or --hosts reaches, the engine's backup API otherwise)`, 'auto')
    .option('--consistency <mode>', `an engine backup's consistency: ${CONSISTENCY_MODES.join(', ')} (auto: freeze the guest when its agent answers; filesystem: fail unless frozen; crash: never freeze)`, 'auto')
    .option('--lock-days <n>', 'retention lock: the point cannot be deleted or pruned for n days (set in the point as it is written)', '0')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the result as one JSON object')
    .action(async (o: BackupOptions) => {
      const engineMode = o.engine !== undefined || o.vmId !== undefined;
      if (engineMode) validateEngineOptions(o);
      else if (!o.qmp || !o.vm) throw new AppError('INVALID_ARGUMENT', 'give --qmp and --vm, or --engine with --vm-id (see --help)');
      else if ((o.method ?? 'auto') !== 'auto' || (o.consistency ?? 'auto') !== 'auto') throw new AppError('INVALID_ARGUMENT', '--method and --consistency apply to an engine backup (--engine ... --vm-id)');
      const lockDays = parseLockDays(o.lockDays);
      // what a backup needs loads now, and only for its kind (main.ts registers every command)
      const { openForWriting } = await import('../repoOwner');
      const repository = await openForWriting(o);
      const bar = ProgressBar.forStderr(o.json === true);
      const onProgress = (p: BackupProgress): void => bar.update(p.bytesDone, p.bytesTotal, p.disk ?? p.phase);
      try {
        if (engineMode) await backupThroughEngine(o, lockDays, repository, onProgress, bar);
        else await backupBySocket(o, lockDays, repository, onProgress, bar);
      } finally {
        bar.finish();
        await repository.close();
      }
    });
}

function parseLockDays(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new AppError('INVALID_ARGUMENT', `--lock-days: '${text}' is not a whole number of days`);
  return Number(text.trim());
}

/** --method and --consistency, checked (they mean something to an engine backup only). */
function engineChoices(o: BackupOptions): { method: BackupMethod; consistency: ConsistencyMode } {
  const method = o.method ?? 'auto';
  const consistency = o.consistency ?? 'auto';
  if (!(BACKUP_METHODS as readonly string[]).includes(method)) throw new AppError('INVALID_ARGUMENT', `--method: '${method}' is not one of ${BACKUP_METHODS.join(', ')}`);
  if (!(CONSISTENCY_MODES as readonly string[]).includes(consistency)) throw new AppError('INVALID_ARGUMENT', `--consistency: '${consistency}' is not one of ${CONSISTENCY_MODES.join(', ')}`);
  return { method: method as BackupMethod, consistency: consistency as ConsistencyMode };
}

function validateEngineOptions(o: BackupOptions): void {
  // the engine method needs no host link; qmp does (auto without one: the engine's backup API)
  const needsHostLink = o.method === 'qmp' && !o.hosts;
  requireEngineOptions(o, `an engine backup${needsHostLink && !o.qmpDir ? ' by the qmp method (with --qmp-dir or --hosts)' : ''}`, { vmId: o.vmId, ...(needsHostLink ? { qmpDir: o.qmpDir } : {}) });
  engineChoices(o);
  if (o.qmpDir && o.hosts) throw new AppError('INVALID_ARGUMENT', 'give --qmp-dir or --hosts, not both');
  if (o.qmp || o.vm || o.disk) throw new AppError('INVALID_ARGUMENT', '--qmp, --vm and --disk do not apply to an engine backup (the engine names the vm and its disks)');
}

async function backupBySocket(o: BackupOptions, lockDays: number, repository: Repository, onProgress: (p: BackupProgress) => void, bar: ProgressBar): Promise<void> {
  const vm = vmFromName(o.vm as string);
  const [{ runBackup }, { LocalHost }, { QmpClient }] = await Promise.all([import('../../backup'), import('../../hosts'), import('../../qmp')]);
  const qmp = await QmpClient.connectUnix(o.qmp as string);
  try {
    const { manifest, warnings } = await runBackup({
      vm,
      qmp,
      host: new LocalHost(),
      repository,
      scratchDir: o.scratch,
      ...(o.disk ? { devices: o.disk } : {}),
      forceFull: o.full === true,
      lockDays,
      transientBitmaps: o.transientBitmaps === true,
      onProgress,
    });
    bar.finish();
    await report(o, manifest, warnings, {});
  } finally {
    await qmp.close();
  }
}

async function backupThroughEngine(o: BackupOptions, lockDays: number, repository: Repository, onProgress: (p: BackupProgress) => void, bar: ProgressBar): Promise<void> {
  const [{ engineVmBackup }, { HostDirectory, LocalHost }] = await Promise.all([import('../../backup'), import('../../hosts')]);
  const engine = await engineFromOptions(o);
  const { method, consistency } = engineChoices(o);
  // no --qmp-dir nor --hosts: a directory without entries, no host is reached (auto → engine)
  const hosts = o.hosts ? HostDirectory.fromFile(o.hosts) : o.qmpDir ? undefined : new HostDirectory({ hosts: [] });
  try {
    const r = await engineVmBackup({
      engine,
      vmId: o.vmId as string,
      repository,
      host: hosts ?? new LocalHost({ qmpDir: o.qmpDir as string }),
      method,
      consistency,
      scratchDir: o.scratch,
      forceFull: o.full === true,
      lockDays,
      transientBitmaps: o.transientBitmaps === true,
      onProgress,
    });
    bar.finish();
    const excluded = r.excluded.map((e) => ({
      device: e.device?.deviceId ?? null,
      diskId: e.disk.disk.id,
      alias: e.disk.disk.alias,
      mode: 'excluded',
      reason: e.reason,
    }));
    await report(o, r.manifest, r.warnings, { vmId: r.vm.id, excluded, method: r.method });
  } finally {
    hosts?.close();
    await engine.close();
  }
}

async function report(o: BackupOptions, manifest: Manifest, warnings: string[], extra: { vmId?: string; excluded?: object[]; method?: string }): Promise<void> {
  const { readDiskMeta } = await import('../../repository');
  for (const w of warnings) process.stderr.write(`olvm-backup: warning: ${w}\n`);
  const disks: object[] = manifest.disks.map((d) => ({
    device: d.device,
    node: d.node,
    mode: d.mode,
    reason: d.reason,
    bytesRead: d.bytesRead,
    ...(extra.vmId ? { diskId: readDiskMeta(d).diskId ?? null, alias: readDiskMeta(d).alias ?? null } : {}),
  }));
  if (o.json) {
    printJson({ point: manifest.pointId, vm: manifest.vm.name, ...(extra.vmId ? { vmId: extra.vmId } : {}), ...(extra.method ? { method: extra.method } : {}), lockedUntil: manifest.lockedUntil, disks: [...disks, ...(extra.excluded ?? [])] });
    return;
  }
  printLine(`point ${manifest.pointId} of vm ${manifest.vm.name}${extra.method ? ` (method ${extra.method})` : ''}${manifest.lockedUntil ? `, locked until ${manifest.lockedUntil}` : ''}`);
  for (const d of manifest.disks) {
    const alias = readDiskMeta(d).alias;
    const name = alias ? `${alias} (${d.device})` : d.device;
    printLine(`  ${name}: ${d.mode} (${d.reason}), read ${formatBytes(d.bytesRead)}, stored ${formatBytes(d.bytesStored)} new`);
  }
  for (const e of (extra.excluded ?? []) as Array<{ alias: string; reason: string }>) printLine(`  ${e.alias}: excluded (${e.reason})`);
}
