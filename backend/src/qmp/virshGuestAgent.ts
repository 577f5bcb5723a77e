import { AppError } from '../errors';
import type { GuestAgent, QgaCallOptions } from './guestAgent';
import { agentCommandArgv, commandJson, DEFAULT_LIBVIRT_URI, sudoAdmitsDomain, sudoRefusal, sudoRefusedError } from './virshCommand';
import type { RemoteCommandRunner } from './virshSession';

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The guest agent of a libvirt domain, through `virsh qemu-agent-command --timeout` over SSH:
 * libvirt holds the agent channel's only connection (and does the guest-sync itself), as it does
 * for the monitor. The domain is tried by id, then by name. Each call is one virsh run bounded
 * on both sides (virsh's own `--timeout`, and the SSH command's). libvirt taints the domain
 * `custom-ga-command` (cosmetic).
 */
export class VirshGuestAgent implements GuestAgent {
  private domain: string | undefined;

  constructor(
    private readonly runner: RemoteCommandRunner,
    private readonly opts: { uri?: string; domains: string[]; vmLabel: string; sudo?: boolean },
  ) {}

  private get label(): string {
    return `guest agent of vm ${this.opts.vmLabel} on host ${this.runner.hostLabel}`;
  }

  async ping(o: QgaCallOptions = {}): Promise<void> {
    await this.execute('guest-ping', o);
  }

  async fsfreezeStatus(o: QgaCallOptions = {}): Promise<'thawed' | 'frozen'> {
    const r = await this.execute('guest-fsfreeze-status', o);
    if (r !== 'thawed' && r !== 'frozen') throw new AppError('QGA_COMMAND_FAILED', `${this.label}: unexpected fsfreeze status ${JSON.stringify(r)}`);
    return r;
  }

  async fsfreezeFreeze(o: QgaCallOptions = {}): Promise<number> {
    return this.count('guest-fsfreeze-freeze', o);
  }

  async fsfreezeThaw(o: QgaCallOptions = {}): Promise<number> {
    return this.count('guest-fsfreeze-thaw', o);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private async count(command: string, o: QgaCallOptions): Promise<number> {
    const r = await this.execute(command, o);
    if (typeof r !== 'number') throw new AppError('QGA_COMMAND_FAILED', `${this.label}: ${command} returned ${JSON.stringify(r)}, not a count`);
    return r;
  }

  private async execute(command: string, o: QgaCallOptions): Promise<unknown> {
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // through sudo, only the names the sudoers rule admits can be asked for
    const candidates = this.domain ? [this.domain] : this.opts.domains.filter((d) => !this.opts.sudo || sudoAdmitsDomain(d));
    let last: AppError | undefined;
    for (const domain of candidates) {
      try {
        const r = await this.once(domain, command, timeoutMs, o.signal);
        this.domain = domain;
        return r;
      } catch (err) {
        if (!(err instanceof AppError && err.details?.['reason'] === 'DOMAIN_NOT_FOUND')) throw err;
        last = err;
      }
    }
    throw last ?? new AppError('QGA_UNAVAILABLE', `${this.label}: no domain to ask`);
  }

  private async once(domain: string, command: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<unknown> {
    const access = { uri: this.opts.uri ?? DEFAULT_LIBVIRT_URI, sudo: this.opts.sudo === true };
    const argv = agentCommandArgv(access, domain, commandJson(command), timeoutMs);
    let r;
    try {
      // virsh's own timeout comes first; the SSH bound only catches a virsh that hangs
      r = await this.runner.run(argv, { timeoutMs: timeoutMs + 5000, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof AppError && err.code === 'TIMEOUT') throw new AppError('QGA_TIMEOUT', `${this.label}: ${command} got no reply within ${timeoutMs} ms`, { cause: err });
      if (err instanceof AppError && err.code === 'ABORTED') throw err;
      throw new AppError('QGA_UNAVAILABLE', `${this.label}: ${command}: cannot reach the host`, { cause: err });
    }
    const text = (r.stderr || r.stdout).trim();
    const refusal = access.sudo ? sudoRefusal(r) : undefined;
    if (refusal !== undefined) throw sudoRefusedError(this.runner.hostLabel, `virsh qemu-agent-command (${command}) for the ${this.label}`, refusal);
    if (r.code !== 0) {
      if (/domain not found|failed to get domain/i.test(text)) {
        throw new AppError('QGA_UNAVAILABLE', `${this.label}: no domain ${domain}: ${text}`, { details: { reason: 'DOMAIN_NOT_FOUND' } });
      }
      // "Guest agent is not responding: QEMU guest agent is not connected" = no agent in the guest;
      // "…: Guest agent not available for now" = libvirt's own --timeout ran out
      if (/not connected|not configured|not running/i.test(text)) throw new AppError('QGA_UNAVAILABLE', `${this.label}: ${command}: ${text}`);
      if (/not responding|not available|timed? ?out/i.test(text)) throw new AppError('QGA_TIMEOUT', `${this.label}: ${command}: ${text}`);
      throw new AppError('QGA_COMMAND_FAILED', `${this.label}: ${command}: ${text}`);
    }
    try {
      const reply = JSON.parse(r.stdout.trim()) as { return?: unknown; error?: { desc?: string } };
      if (reply.error) throw new AppError('QGA_COMMAND_FAILED', `${this.label}: ${command}: ${reply.error.desc ?? 'unknown error'}`);
      return reply.return;
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('QGA_COMMAND_FAILED', `${this.label}: ${command}: virsh printed no agent reply: ${r.stdout.slice(0, 200)}`);
    }
  }
}
