/**
 * `olvm-backup boot-check`: boots a restore point in an isolated QEMU on this machine (no
 * network, throw-away overlay, the repository only read), waits for a sign of life, takes a
 * screenshot and records the result on the point (restore/bootCheck.ts). Exit 0 when it booted,
 * 1 when it failed or timed out, with the reason.
 */
import type { Command } from 'commander';
import { AppError } from '../../errors';
import { printJson, printLine } from '../output';
import { addRepoOptions, type RepoFlags } from '../repoFlags';

interface BootCheckCliOptions extends RepoFlags {
  point: string;
  disk?: string;
  timeout: string;
  expect?: string;
  screenshot?: string;
  agent?: boolean;
  accel: string;
  verbose?: boolean;
  json?: boolean;
}

export function registerBootCheck(program: Command): void {
  addRepoOptions(program.command('boot-check').description('boot a restore point in an isolated VM (no network, throw-away overlay), wait for a sign of life, screenshot it and record the result on the point'))
    .requiredOption('--point <id>', 'restore point id (see `points`)')
    .option('--disk <disk>', 'the boot disk: device id, engine disk id or alias (default: the first disk); every disk is attached')
    .option('--timeout <seconds>', 'how long to wait for a sign of life', '120')
    .option('--expect <regex>', 'a serial-console line that means the guest is up (default: a login prompt, systemd\'s multi-user target, or OLVM-BOOT-OK)')
    .option('--agent', 'also count an answered guest-agent ping as a sign of life')
    .option('--accel <kind>', 'auto (kvm when /dev/kvm is usable, else tcg), kvm or tcg', 'auto')
    .option('--screenshot <file>', 'write the screenshot here too (png, or ppm on an older qemu)')
    .option('--verbose', 'log on stderr (JSON lines)')
    .option('--json', 'print the result as JSON')
    .action(async (o: BootCheckCliOptions) => {
      const timeoutS = Number(o.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 3600) throw new AppError('INVALID_ARGUMENT', `--timeout must be a number of seconds from 1 to 3600, not '${o.timeout}'`);
      if (!['auto', 'kvm', 'tcg'].includes(o.accel)) throw new AppError('INVALID_ARGUMENT', `--accel must be auto, kvm or tcg, not '${o.accel}'`);
      let expect: RegExp | undefined;
      if (o.expect !== undefined) {
        try {
          expect = new RegExp(o.expect);
        } catch (err) {
          throw new AppError('INVALID_ARGUMENT', `--expect is not a regular expression: ${o.expect}`, { cause: err });
        }
      }
      const [{ openRepository, cliActor }, restore, { createLogger }] = await Promise.all([import('../repoOpen'), import('../../restore'), import('../../util/log')]);
      const log = createLogger({ level: o.verbose ? 'info' : 'warn', destination: 2, name: 'olvm-backup-boot-check' });
      const repository = await openRepository(o);
      // Ctrl-C or a service manager's stop: the VM is killed and the leases released at once
      const stop = new AbortController();
      const onSignal = (): void => stop.abort(new Error('interrupted'));
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      try {
        const r = await restore.bootCheck({
          signal: stop.signal,
          repository,
          pointId: o.point,
          ...(o.disk !== undefined ? { disk: o.disk } : {}),
          timeoutMs: timeoutS * 1000,
          ...(expect ? { expect } : {}),
          guestAgent: o.agent ?? false,
          accel: o.accel as 'auto' | 'kvm' | 'tcg',
          ...(o.screenshot !== undefined ? { screenshot: o.screenshot } : {}),
          actor: cliActor(),
          log,
        });
        if (o.json) {
          const { record, ...rest } = r;
          printJson({ ...rest, storedScreenshot: record.screenshot });
        } else {
          printLine(`point ${r.pointId}: ${r.state} after ${(r.durationMs / 1000).toFixed(1)} s (${r.accel}, no network device: ${r.noNetworkDevice ? 'yes' : 'NO'}): ${r.reason}${r.matchedLine ? `: ${r.matchedLine}` : ''}`);
          if (r.screenshot) printLine(`screenshot: ${r.screenshot}`);
          if (r.state !== 'ok' && r.consoleTail.length > 0) printLine(`last console lines:\n  ${r.consoleTail.join('\n  ')}`);
        }
        if (r.state !== 'ok') process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
        await repository.close();
      }
    });
}
