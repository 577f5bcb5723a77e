import type { Command } from 'commander';
import { Repository } from '../../repository';
import { printJson, printLine } from '../output';
import { parseSize } from '../parse';
import { ALLOW_OTHER_OWNER, checkInitTarget } from '../repoOwner';

export function registerRepo(program: Command): void {
  const repo = program.command('repo').description('manage a backup repository');
  repo
    .command('init')
    .description('create an empty repository in a directory')
    .requiredOption('--repo <dir>', 'repository directory (created if missing; must be empty)')
    .option('--chunk-size <size>', 'chunk size, 256K to 4M, a power of two', '1M')
    .option(ALLOW_OTHER_OWNER, 'create it even though the (existing, empty) directory belongs to another account')
    .option('--json', 'print the result as JSON')
    .action(async (o: { repo: string; chunkSize: string; allowOtherOwner?: boolean; json?: boolean }) => {
      await checkInitTarget(o.repo, o);
      const r = await Repository.init(o.repo, { chunkSize: parseSize(o.chunkSize, '--chunk-size') });
      try {
        if (o.json) printJson({ repo: r.dir, chunkSize: r.chunkSize });
        else printLine(`initialized repository ${r.dir} (chunk size ${r.chunkSize} bytes)`);
      } finally {
        await r.close();
      }
    });
}
