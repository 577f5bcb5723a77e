import * as os from 'os';
import type { Command } from 'commander';
import type { BackupProgress } from '../../backup';
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
    .option('--lock-days <n>', 'retention lock: the point cannot be deleted or pruned for n days (set in the point as it is written)', '0')
    .option(ALLOW_OTHER_OWNER, ALLOW_OTHER_OWNER_HELP)
    .option('--json', 'print the result as one JSON object')
    .action(async (o: BackupOptions) => {
      const engineMode = o.engine !== undefined || o.vmId !== undefined;
      if (engineMode) validateEngineOptions(o);
      else if (!o.qmp || !o.vm) throw new AppError('INVALID_ARGUMENT', 'give --qmp and --vm, or --engine with --vm-id (see --help)');
      const lockDays = parseLockDays(o.lockDays);
      // what a backup needs loads now, and only for its kind (main.ts registers every command)
      const { openForWriting } = await import('../repoOwner');
      const repository = await openForWriting(o.repo, o);
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

function validateEngineOptions(o: BackupOptions): void {
  requireEngineOptions(o, `an engine backup${o.qmpDir || o.hosts ? '' : ' (with --qmp-dir or --hosts)'}`, { vmId: o.vmId, ...(o.hosts ? {} : { qmpDir: o.qmpDir }) });
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
  const hosts = o.hosts ? HostDirectory.fromFile(o.hosts) : undefined;
  try {
    const r = await engineVmBackup({
      engine,
      vmId: o.vmId as string,
      repository,
      host: hosts ?? new LocalHost({ qmpDir: o.qmpDir as string }),
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
    await report(o, r.manifest, r.warnings, { vmId: r.vm.id, excluded });
  } finally {
    hosts?.close();
    await engine.close();
  }
}

async function report(o: BackupOptions, manifest: Manifest, warnings: string[], extra: { vmId?: string; excluded?: object[] }): Promise<void> {
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
    printJson({ point: manifest.pointId, vm: manifest.vm.name, ...(extra.vmId ? { vmId: extra.vmId } : {}), lockedUntil: manifest.lockedUntil, disks: [...disks, ...(extra.excluded ?? [])] });
    return;
  }
  printLine(`point ${manifest.pointId} of vm ${manifest.vm.name}${manifest.lockedUntil ? `, locked until ${manifest.lockedUntil}` : ''}`);
  for (const d of manifest.disks) {
    const alias = readDiskMeta(d).alias;
    const name = alias ? `${alias} (${d.device})` : d.device;
    printLine(`  ${name}: ${d.mode} (${d.reason}), read ${formatBytes(d.bytesRead)}, stored ${formatBytes(d.bytesStored)} new`);
  }
  for (const e of (extra.excluded ?? []) as Array<{ alias: string; reason: string }>) printLine(`  ${e.alias}: excluded (${e.reason})`);
}
