import { AppError } from '../errors';
import { sleep } from '../util/abort';
import type { QmpArgs, QmpCommandName, QmpResult } from './commands';
import type { QmpEvent, QmpEventListener } from './events';
import type { QmpCallOptions, QmpSession } from './session';
import { SessionSubscribers } from './subscribers';
import {
  commandJson,
  DEFAULT_LIBVIRT_URI,
  monitorCommandArgv,
  monitorEventArgv,
  sudoAdmitsDomain,
  sudoRefusal,
  sudoRefusedError,
  VIRSH_QMP_COMMANDS,
  type VirshAccess,
} from './virshCommand';

/** The result of one command run on the VM's host. */
export interface RemoteCommandResult {
  /** exit status; null when the command was killed or its transport was lost */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs argv-style commands on the VM's host (over SSH, or locally). Implementations quote every
 * argument: nothing here is ever interpreted by a shell.
 */
export interface RemoteCommandRunner {
  /** names the host in messages */
  readonly hostLabel: string;
  run(argv: string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<RemoteCommandResult>;
  /** A long-running command whose stdout is delivered line by line until it ends or `stop()`. */
  stream(argv: string[], onLine: (line: string) => void, onEnd: (err: Error | undefined) => void): Promise<{ stop(): void }>;
  /** Subscribes to the loss of the transport under the commands (the SSH connection). */
  onLost(listener: (err: Error) => void): () => void;
}

export interface VirshSessionOptions {
  /** libvirt connection URI on the host; default qemu:///system */
  uri?: string;
  /** domain name or UUID (virsh accepts either) */
  domain: string;
  /** names the VM in messages (defaults to `domain`) */
  vmLabel?: string;
  /** Follow QEMU's events through `virsh qemu-monitor-event --loop` (default true). */
  events?: boolean;
  /** Time given to the event listener to register after its channel opened; default 300 ms. */
  eventSettleMs?: number;
  /** Run virsh through `sudo -n` (a non-root SSH account; HOSTS.md has the sudoers rule). */
  sudo?: boolean;
}

const DEFAULT_CALL_TIMEOUT_MS = 60_000;
const EVENT_LINE = /^event (\S+) at (\d+)\.(\d+) for domain '/;

/**
 * A QMP session through libvirt: each command is one `virsh qemu-monitor-command` on the VM's
 * host, so libvirt keeps its single monitor connection and serialises our commands with its own.
 * virsh exits 0 when QEMU refuses a command (the reply carries "error"), so the reply is parsed.
 * Events come from a `virsh qemu-monitor-event --loop` kept running for the session's life. The
 * listener has no "registered" signal, so waits that matter do not rely on it alone: after
 * `block-export-del` the session polls `query-block-exports` and emits BLOCK_EXPORT_DELETED
 * itself when the export is gone (BlockApi.exportDel waits for it), and BlockJob polls
 * `query-jobs` when job events do not come.
 */
export class VirshSession implements QmpSession {
  private readonly subs = new SessionSubscribers();
  private eventStream: { stop(): void } | undefined;
  private offLost: () => void = () => undefined;
  /** export ids whose BLOCK_EXPORT_DELETED was seen, so a synthetic one is not sent twice */
  private readonly deletedExports = new Set<string>();
  readonly label: string;
  readonly uri: string;
  private readonly access: VirshAccess;

  private constructor(private readonly runner: RemoteCommandRunner, private readonly opts: VirshSessionOptions) {
    this.uri = opts.uri ?? DEFAULT_LIBVIRT_URI;
    this.access = { uri: this.uri, sudo: opts.sudo === true };
    this.label = `vm ${opts.vmLabel ?? opts.domain} on host ${runner.hostLabel}`;
  }

  /** Checks the domain exists and its QEMU answers, then starts following events. */
  static async open(runner: RemoteCommandRunner, opts: VirshSessionOptions & { timeoutMs?: number; signal?: AbortSignal }): Promise<VirshSession> {
    const s = new VirshSession(runner, opts);
    if (s.access.sudo && !sudoAdmitsDomain(opts.domain)) {
      throw new AppError('HOST_DOMAIN_NOT_FOUND', `vm ${opts.vmLabel ?? opts.domain} on host ${runner.hostLabel}: the domain name ${JSON.stringify(opts.domain)} has characters the sudoers rule does not admit; look it up by its uuid`, {
        details: { host: runner.hostLabel, domain: opts.domain, reason: 'DOMAIN_NOT_FOUND' },
      });
    }
    try {
      await s.execute('query-status', {}, { timeoutMs: opts.timeoutMs ?? 30_000, ...(opts.signal ? { signal: opts.signal } : {}) });
      // the transport is up now: its loss ends the session
      s.offLost = runner.onLost((err) =>
        s.shutdown(new AppError('QMP_DISCONNECTED', `connection to host ${runner.hostLabel} lost (${s.label})`, { cause: err })),
      );
      if (opts.events !== false) await s.startEvents();
    } catch (err) {
      s.shutdown(undefined);
      if (err instanceof AppError && err.code === 'QMP_COMMAND_FAILED') {
        throw new AppError('QMP_CONNECT_FAILED', `cannot open the monitor of ${s.label}: ${err.message}`, { cause: err, details: err.details });
      }
      throw err;
    }
    return s;
  }

  get closed(): boolean {
    return this.subs.closed;
  }

  async execute<K extends QmpCommandName>(name: K, args: QmpArgs<K>, opts: QmpCallOptions = {}): Promise<QmpResult<K>> {
    if (this.subs.closed) {
      throw new AppError('QMP_DISCONNECTED', `cannot run ${name}: session with ${this.label} is closed`, { cause: this.subs.closedReason });
    }
    if (opts.signal?.aborted) throw new AppError('QMP_ABORTED', `${name} aborted before it was sent`);
    if (this.access.sudo && !(VIRSH_QMP_COMMANDS as readonly string[]).includes(name)) {
      throw sudoRefusedError(this.runner.hostLabel, `qmp command ${name} for ${this.label}`, 'not one of the commands the sudoers rule allows');
    }
    const json = commandJson(name, args);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    let r: RemoteCommandResult;
    try {
      r = await this.runner.run(monitorCommandArgv(this.access, this.opts.domain, json), {
        timeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw new AppError('QMP_ABORTED', `${name} on ${this.label} aborted`, { cause: err });
      if (err instanceof AppError && err.code === 'TIMEOUT') {
        throw new AppError('QMP_TIMEOUT', `${name} on ${this.label} got no reply within ${timeoutMs} ms`, { cause: err });
      }
      // could not get to the host at all (unreachable, key refused, login refused): say so as is
      if (err instanceof AppError && (err.code === 'QMP_CONNECT_FAILED' || err.code.startsWith('HOST_'))) {
        this.shutdown(err);
        throw err;
      }
      const e = new AppError('QMP_DISCONNECTED', `${name} on ${this.label}: connection to the host failed`, { cause: err });
      if (isTransportError(err)) this.shutdown(e);
      throw e;
    }
    if (r.code !== 0) throw this.virshFailure(name, r);
    let reply: Record<string, unknown>;
    try {
      reply = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    } catch {
      throw new AppError('QMP_PROTOCOL_ERROR', `${name} on ${this.label}: virsh printed no qmp reply: ${clip(r.stdout || r.stderr)}`);
    }
    if ('error' in reply) {
      const e = (reply['error'] ?? {}) as { class?: string; desc?: string };
      throw new AppError('QMP_COMMAND_FAILED', `qemu refused ${name} on ${this.label}: ${e.desc ?? 'unknown error'}`, {
        details: { qmpClass: e.class ?? 'GenericError', qmpDesc: e.desc ?? '', command: name },
      });
    }
    if (name === 'block-export-del') {
      const id = (args as QmpArgs<'block-export-del'>).id;
      this.deletedExports.delete(id);
      void this.confirmExportDeleted(id);
    }
    return reply['return'] as QmpResult<K>;
  }

  onEvent(listener: QmpEventListener): () => void {
    return this.subs.onEvent(listener);
  }

  onClose(listener: (reason: Error | undefined) => void): () => void {
    return this.subs.onClose(listener);
  }

  close(): Promise<void> {
    this.shutdown(undefined);
    return Promise.resolve();
  }

  private async startEvents(): Promise<void> {
    // The listener must not outlive us (virshCommand.ts says how it ends with our channel).
    const argv = monitorEventArgv(this.access, this.opts.domain);
    this.eventStream = await this.runner.stream(
      argv,
      (line) => this.onEventLine(line),
      (err) => {
        if (!this.subs.closed) {
          this.shutdown(new AppError('QMP_DISCONNECTED', `event listener for ${this.label} ended`, { cause: err }));
        }
      },
    );
    await sleep(this.opts.eventSettleMs ?? 300);
  }

  private onEventLine(line: string): void {
    const m = EVENT_LINE.exec(line);
    if (!m) return;
    // the domain name may contain anything, so the data is the first parseable JSON after "': "
    let data: Record<string, unknown> | undefined;
    for (let i = line.indexOf("': ", m[0].length); i >= 0; i = line.indexOf("': ", i + 1)) {
      const rest = line.slice(i + 3).trim();
      if (rest === '<null>') {
        data = {};
        break;
      }
      try {
        const v: unknown = JSON.parse(rest);
        if (typeof v === 'object' && v !== null) {
          data = v as Record<string, unknown>;
          break;
        }
      } catch {
        // not yet the separator
      }
    }
    const event: QmpEvent = {
      event: m[1] ?? '',
      data: data ?? {},
      timestamp: { seconds: Number(m[2]), microseconds: Number(m[3]) },
    };
    if (event.event === 'BLOCK_EXPORT_DELETED' && typeof event.data['id'] === 'string') this.deletedExports.add(event.data['id']);
    this.emit(event);
  }

  private emit(event: QmpEvent): void {
    this.subs.emit(event);
  }

  /** Polls until the export is gone and emits BLOCK_EXPORT_DELETED unless the real one came. */
  private async confirmExportDeleted(id: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!this.subs.closed && Date.now() < deadline) {
      if (this.deletedExports.has(id)) return;
      try {
        const list = await this.execute('query-block-exports', {}, { timeoutMs: 30_000 });
        if (!list.some((e) => e.id === id)) break;
      } catch {
        return;
      }
      await sleep(100);
    }
    if (this.subs.closed || this.deletedExports.has(id)) return;
    const now = Date.now();
    this.emit({ event: 'BLOCK_EXPORT_DELETED', data: { id }, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } });
  }

  private virshFailure(name: string, r: RemoteCommandResult): AppError {
    const refusal = this.access.sudo ? sudoRefusal(r) : undefined;
    if (refusal !== undefined) return sudoRefusedError(this.runner.hostLabel, `virsh qemu-monitor-command (${name}) for ${this.label}`, clip(refusal));
    const text = clip(r.stderr || r.stdout);
    if (r.code === null) {
      const e = new AppError('QMP_DISCONNECTED', `${name} on ${this.label}: virsh did not finish (${text || 'killed'})`);
      return e;
    }
    if (/failed to get domain|Domain not found|no domain with matching/i.test(text)) {
      return new AppError('HOST_DOMAIN_NOT_FOUND', `vm ${this.opts.vmLabel ?? this.opts.domain} not found on host ${this.runner.hostLabel} (${this.uri}): ${text}`, {
        details: { host: this.runner.hostLabel, domain: this.opts.domain, reason: 'DOMAIN_NOT_FOUND' },
      });
    }
    if (/domain is not running/i.test(text)) {
      const e = new AppError('QMP_DISCONNECTED', `${this.label} is not running: ${text}`, { details: { reason: 'DOMAIN_NOT_RUNNING' } });
      this.shutdown(e);
      return e;
    }
    if (/command not found|virsh: not found|No such file/i.test(text) && r.code === 127) {
      return new AppError('QMP_CONNECT_FAILED', `virsh is not installed on host ${this.runner.hostLabel}`, { details: { reason: 'VIRSH_MISSING' } });
    }
    if (/failed to connect to the hypervisor|Failed to connect socket/i.test(text)) {
      return new AppError('QMP_CONNECT_FAILED', `libvirt (${this.uri}) does not answer on host ${this.runner.hostLabel}: ${text}`, {
        details: { reason: 'LIBVIRT_UNREACHABLE' },
      });
    }
    return new AppError('QMP_COMMAND_FAILED', `${name} on ${this.label} failed in libvirt: ${text}`, {
      details: { qmpClass: 'LibvirtError', qmpDesc: text, command: name },
    });
  }

  private shutdown(reason: Error | undefined): void {
    this.subs.close(reason, () => {
      this.offLost();
      this.eventStream?.stop();
      this.eventStream = undefined;
    });
  }
}

function clip(s: string): string {
  const t = s.trim().replace(/\s+/g, ' ');
  return t.length > 400 ? `${t.slice(0, 400)}…` : t;
}

function isTransportError(err: unknown): boolean {
  return !(err instanceof AppError && (err.code === 'TIMEOUT' || err.code === 'ABORTED'));
}
