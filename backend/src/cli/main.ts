#!/usr/bin/env node
// Restore's image writes and the batched directory fsyncs run on libuv's threadpool, whose
// default of 4 threads keeps the disk queue shallow. Must be set before the pool's first use.
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { Command, CommanderError } from 'commander';
import { describeError } from '../errors';
import { registerAudit } from './commands/audit';
import { registerBackup } from './commands/backup';
import { registerBootCheck } from './commands/bootCheck';
import { registerCatalog } from './commands/catalog';
import { registerExport } from './commands/export';
import { registerGc } from './commands/gc';
import { registerHostAccess } from './commands/hostAccess';
import { registerKey } from './commands/key';
import { registerPoints } from './commands/points';
import { registerPrune } from './commands/prune';
import { registerRepo } from './commands/repo';
import { registerRestore } from './commands/restore';
import { registerServe } from './commands/serve';
import { registerSetup } from './commands/setup';
import { registerShow } from './commands/show';
import { registerVerify } from './commands/verify';

/** Every failure ends as one line on stderr naming what failed and why, and exit status 1. */
async function main(argv: string[]): Promise<void> {
  const program = new Command('olvm-backup')
    .description('incremental, deduplicated backups of QEMU/oVirt VMs through dirty bitmaps')
    .exitOverride()
    .showHelpAfterError(false)
    // options after a subcommand belong to it (`points delete --repo …`, `points --repo …`)
    .enablePositionalOptions();
  registerRepo(program);
  registerKey(program);
  registerBackup(program);
  registerPoints(program);
  registerShow(program);
  registerRestore(program);
  registerExport(program);
  registerBootCheck(program);
  registerVerify(program);
  registerServe(program);
  registerSetup(program);
  registerHostAccess(program);
  registerCatalog(program);
  registerPrune(program);
  registerGc(program);
  registerAudit(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (usage errors) or the help text
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`olvm-backup: ${describeError(err)}\n`);
    process.exitCode = 1;
  }
}

void main(process.argv);
