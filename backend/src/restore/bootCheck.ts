/**
 * Boot check of a restore point: its disks served by our NBD server on a private unix socket
 * (directory mode 0700), started in an isolated QEMU (bootVm.ts), watched until a sign of life
 * (a console line matching `expect`, or a guest-agent ping when asked), a known failure
 * (firmware or kernel lines, QEMU ending or stopping on an error) or the timeout; then a
 * screenshot, QEMU stopped, and the result stored on the point (repository/bootChecks.ts) while
 * the point's read leases still hold it. Everything made is removed in `finally`.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseOvf } from '../engine';
import { AppError, describeError, isAppError } from '../errors';
import { NbdServer } from '../nbd';
import { writeBootCheck, type BootCheckRecord, type BootCheckState, type Repository } from '../repository';
import type { Logger } from '../util/log';
import { BootVm, kvmUsable, type BootAccel, type BootVmOptions } from './bootVm';
import { findDisk, PointExport } from './pointExport';

/**
 * A sign of life on the serial console, by default: a login prompt (getty, `… login:`), systemd
 * reaching its multi-user or graphical target, or the line `OLVM-BOOT-OK` a guest may print to
 * say it is up. Guests that print nothing on the serial port need `--expect` or the agent.
 */
export const DEFAULT_EXPECT = /login:\s*$|Reached target .*(Multi-User|Graphical)|OLVM-BOOT-OK/;
/** Lines that end a boot: firmware (SeaBIOS, syslinux, MBR code, GRUB) or the kernel. */
export const FAILURE_PATTERN =
  /Kernel panic|No bootable device|Boot failed|not a bootable disk|Missing operating system|Operating system not found|Error loading operating system|error: no such device|Could not find kernel image/;
const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MEMORY_MIB = 512;
const MAX_MEMORY_MIB = 4096;
const MIN_MEMORY_MIB = 128;
const TAIL_LINES = 20;
const POLL_MS = 250;

export interface BootCheckOptions {
  repository: Repository;
  pointId: string;
  /** Disk to boot (device, disk id or alias); default the point's first disk. All the point's
   *  disks are attached, this one first and the only bootable one. */
  disk?: string;
  timeoutMs?: number;
  expect?: RegExp;
  /** Also count an answered guest-agent ping as a sign of life. */
  guestAgent?: boolean;
  /** `auto` (default): KVM when /dev/kvm is usable, else TCG; a KVM internal error retries under TCG. */
  accel?: 'auto' | BootAccel;
  /** Copy of the screenshot here (the extension QEMU gave is appended when `screenshot` has none). */
  screenshot?: string;
  actor: string;
  log?: Logger;
  /** Where the private directory is made (default the OS temp directory). */
  workDir?: string;
  /** Stops the wait (a cancelled job, a service shutting down): QEMU is killed, nothing is
   *  recorded on the point and ABORTED is thrown. */
  signal?: AbortSignal;
}

/** The record's fields (repository/bootChecks.ts owns them), but `screenshot` is the caller's copy. */
export interface BootCheckResult extends Omit<BootCheckRecord, 'screenshot'> {
  /** The copy the caller asked for (`screenshot`), else null. */
  screenshot: string | null;
  /** The record as stored on the point. */
  record: BootCheckRecord;
}

interface Verdict {
  state: BootCheckState;
  reason: string;
  matchedLine: string | null;
  kvmBroken?: boolean;
}

export async function bootCheck(opts: BootCheckOptions): Promise<BootCheckResult> {
  const started = Date.now();
  const manifest = await opts.repository.readManifest(opts.pointId);
  const boot = opts.disk === undefined ? manifest.disks[0] : findDisk(manifest.disks, opts.disk);
  if (!boot) throw new AppError('REPO_DISK_NOT_FOUND', `point ${opts.pointId} has no disk '${opts.disk ?? ''}' (it has: ${manifest.disks.map((d) => d.device).join(', ')})`);
  const order = [boot, ...manifest.disks.filter((d) => d !== boot)];
  const memoryMiB = memoryOf(manifest.vmDefinition, opts.log);
  const wantKvm = opts.accel === 'kvm' || ((opts.accel ?? 'auto') === 'auto' && (await kvmUsable()));
  const dir = await fs.mkdtemp(path.join(opts.workDir ?? os.tmpdir(), 'olvm-bootcheck-'));
  await fs.chmod(dir, 0o700);
  const exports: PointExport[] = [];
  let server: NbdServer | undefined;
  try {
    for (const d of order) {
      exports.push(await PointExport.open({ repository: opts.repository, pointId: opts.pointId, disk: d.device, holder: `${opts.actor} boot check`, ...(opts.log ? { log: opts.log } : {}) }));
    }
    const socket = path.join(dir, 'nbd.sock');
    server = await NbdServer.start({ exports: exports.map((e, i) => ({ name: `d${i}`, source: e })), listen: { socket }, ...(opts.log ? { log: opts.log } : {}) });
    const disks = exports.map((e, i) => ({ socket, exportName: `d${i}`, size: e.size }));
    const run = (accel: BootAccel, sub: string): Promise<RunOutcome> =>
      runOnce({ dir: path.join(dir, sub), disks, accel, memoryMiB, guestAgent: opts.guestAgent ?? false }, opts);
    // auto: a KVM that cannot run this guest (QEMU aborting at start, an internal error of
    // the accelerator) is the host's problem, not the point's: the check runs again under TCG
    const fallback = wantKvm && (opts.accel ?? 'auto') === 'auto';
    let outcome: RunOutcome;
    try {
      outcome = await run(wantKvm ? 'kvm' : 'tcg', 'run-1');
    } catch (err) {
      if (!fallback || !isAppError(err, 'TOOL_FAILED')) throw err;
      outcome = { verdict: { state: 'failed', reason: describeError(err), matchedLine: null, kvmBroken: true }, tail: [], accel: 'kvm', noNetworkDevice: true, screenshotFile: null };
    }
    if (outcome.verdict.kvmBroken && fallback) {
      opts.log?.warn({ reason: outcome.verdict.reason }, 'kvm failed on this host: the boot check runs again under tcg');
      outcome = await run('tcg', 'run-2');
    }
    let screenshot: string | null = null;
    if (outcome.screenshotFile && opts.screenshot) {
      screenshot = path.extname(opts.screenshot) ? opts.screenshot : `${opts.screenshot}${path.extname(outcome.screenshotFile)}`;
      await fs.copyFile(outcome.screenshotFile, screenshot);
    }
    const record: BootCheckRecord = {
      pointId: opts.pointId,
      disks: order.map((d) => d.device),
      state: outcome.verdict.state,
      reason: outcome.verdict.reason,
      matchedLine: outcome.verdict.matchedLine,
      consoleTail: outcome.tail,
      accel: outcome.accel,
      noNetworkDevice: outcome.noNetworkDevice,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      actor: opts.actor,
      screenshot: null,
    };
    // stored while the leases still hold the point: its deletion cannot slip in between
    const stored = await writeBootCheck(opts.repository.dir, record, outcome.screenshotFile, opts.repository.encrypted);
    opts.log?.info({ pointId: opts.pointId, state: record.state, reason: record.reason, accel: record.accel }, 'boot check done');
    return { ...record, screenshot, record: stored };
  } finally {
    await server?.close().catch((err: unknown) => opts.log?.warn({ err: describeError(err) }, 'closing the boot check nbd server failed'));
    for (const e of exports) await e.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

interface RunOutcome {
  verdict: Verdict;
  tail: string[];
  accel: BootAccel;
  noNetworkDevice: boolean;
  screenshotFile: string | null;
}

async function runOnce(vmOpts: BootVmOptions, opts: BootCheckOptions): Promise<RunOutcome> {
  await fs.mkdir(vmOpts.dir, { mode: 0o700 });
  const vm = await BootVm.start(vmOpts);
  try {
    const nics = await vm.networkDevices();
    if (nics.length > 0) throw new AppError('RESTORE_FAILED', `the boot check's vm has network devices: ${nics.join(', ')}`);
    const watch = new ConsoleWatch(vm, opts.expect ?? DEFAULT_EXPECT);
    const verdict = await watch.wait(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, opts.guestAgent ?? false, opts.signal);
    let screenshotFile: string | null = null;
    if (vm.exit === undefined) {
      screenshotFile = await vm.screenshot(path.join(vmOpts.dir, 'screen')).catch((err: unknown) => {
        opts.log?.warn({ err: describeError(err) }, 'the boot check screenshot failed');
        return null;
      });
    }
    return { verdict, tail: watch.tail(), accel: vmOpts.accel, noNetworkDevice: true, screenshotFile };
  } finally {
    await vm.kill();
  }
}

/** Reads the console and firmware files as they grow and decides. */
class ConsoleWatch {
  private console = '';
  private firmware = '';

  constructor(private readonly vm: BootVm, private readonly expect: RegExp) {}

  tail(): string[] {
    return this.console.replace(/\r/g, '').split('\n').filter((l) => l.trim() !== '').slice(-TAIL_LINES);
  }

  async wait(timeoutMs: number, agent: boolean, signal: AbortSignal | undefined): Promise<Verdict> {
    const deadline = Date.now() + timeoutMs;
    let nextStatus = 0;
    let nextPing = 0;
    for (;;) {
      if (signal?.aborted) throw new AppError('ABORTED', 'the boot check was stopped before a verdict', { cause: signal.reason });
      this.console = await readAll(this.vm.consoleFile);
      this.firmware = await readAll(this.vm.firmwareFile);
      const life = matchLine(this.console, this.expect);
      if (life !== null) return { state: 'ok', reason: 'the console showed a sign of life', matchedLine: life };
      const failed = matchLine(this.console, FAILURE_PATTERN) ?? matchLine(this.firmware, FAILURE_PATTERN);
      if (failed !== null) return { state: 'failed', reason: 'the firmware or the kernel reported a boot failure', matchedLine: failed };
      if (this.vm.exit !== undefined) return { state: 'failed', reason: `qemu ended before a sign of life: ${this.vm.exit}`, matchedLine: null };
      const now = Date.now();
      if (now >= nextStatus) {
        nextStatus = now + 1000;
        const status = await this.vm.status().catch(() => 'unknown');
        if (status === 'internal-error') return { state: 'failed', reason: 'qemu stopped the vm on an internal error (accelerator)', matchedLine: null, kvmBroken: true };
        if (status === 'guest-panicked' || status === 'shutdown') return { state: 'failed', reason: `the vm stopped before a sign of life (${status})`, matchedLine: null };
      }
      if (agent && now >= nextPing) {
        nextPing = now + 3000;
        if (await this.vm.agentPing(2000)) return { state: 'ok', reason: 'the guest agent answered a ping', matchedLine: null };
      }
      if (Date.now() >= deadline) return { state: 'timeout', reason: `no sign of life within ${Math.round(timeoutMs / 1000)} s (expected ${this.expect.source}${agent ? ' or a guest-agent ping' : ''})`, matchedLine: null };
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/** The first line of `text` (the unfinished last one too: a prompt has no newline) matching `re`. */
function matchLine(text: string, re: RegExp): string | null {
  for (const line of text.replace(/\r/g, '').split('\n')) if (re.test(line)) return line.trim().slice(0, 500);
  return null;
}

async function readAll(file: string): Promise<string> {
  try {
    // bounded: a guest flooding its console must not fill our memory
    const fh = await fs.open(file, 'r');
    try {
      const { size } = await fh.stat();
      const from = Math.max(0, size - 1024 * 1024);
      const buf = Buffer.alloc(size - from);
      await fh.read(buf, 0, buf.length, from);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/** The OVF's memory, bounded to what a check on the backup server may take; 512 MiB without one. */
function memoryOf(def: { kind: string; content: string } | null, log: Logger | undefined): number {
  if (def?.kind !== 'ovf') return DEFAULT_MEMORY_MIB;
  try {
    return Math.min(MAX_MEMORY_MIB, Math.max(MIN_MEMORY_MIB, parseOvf(def.content).memoryMb));
  } catch (err) {
    log?.warn({ err: describeError(err) }, 'the point ovf cannot be read: the boot check uses 512 MiB');
    return DEFAULT_MEMORY_MIB;
  }
}
