/**
 * `olvm-backup files ls|find|get`: file-level restore from the shell through a browse session
 * (restore/fileBrowse.ts): the point's disks served over NBD to one libguestfs appliance,
 * read-only. Names are shown escaped (`\n`, `\xHH`, `\\`) and paths are taken in the same form,
 * so a name with a newline or invalid UTF-8 can be typed back. `get` writes a file as it is and
 * a folder as a .tar.gz. SIGINT/SIGTERM close the session (appliance, export, lease) first.
 */
import type { Command } from 'commander';
import { createWriteStream, promises as fs } from 'fs';
import { pipeline } from 'stream/promises';
import { AppError } from '../../errors';
import type { BrowseEntry, BrowseSession } from '../../restore';
import { printJson, printLine } from '../output';
import { addRepoOptions, type RepoFlags } from '../repoFlags';

interface FilesOptions extends RepoFlags {
  point: string;
  disk?: string[];
  fs?: string;
  accel?: 'auto' | 'kvm' | 'tcg';
  inspect?: boolean;
  json?: boolean;
}

export function registerFiles(program: Command): void {
  const files = program.command('files').description('browse and fetch files of a restore point read-only (libguestfs over an NBD export)');
  const common = (cmd: Command): Command =>
    addRepoOptions(cmd)
      .requiredOption('--point <id>', 'restore point id (see `points`)')
      .option('--disk <disk...>', 'only these disks (device id, disk id or alias; default all)')
      .option('--fs <device>', 'the filesystem as libguestfs names it (/dev/sda1, /dev/vg/lv; default: the only one)')
      .option('--accel <mode>', 'auto, kvm or tcg for the appliance', 'auto')
      .option('--inspect', 'also run libguestfs\' OS inspection (slower; shown on stderr)')
      .option('--json', 'JSON output');
  common(files.command('ls').argument('[path]', 'folder (escaped form)', '/').description('list a folder')).action(async (p: string, o: FilesOptions) => {
    await withSession(o, async (s) => {
      const at = { filesystem: pickFs(s, o.fs), path: await parsePath(p) };
      const { entries, truncated } = await s.list(at);
      if (o.json) printJson({ filesystem: at.filesystem, entries, truncated });
      else {
        for (const e of entries) printLine(entryLine(e));
        if (truncated) process.stderr.write('olvm-backup: the folder has more entries than shown\n');
      }
    });
  });
  common(files.command('find').argument('<glob>', 'a name glob (*, ?, [..]) or a path glob with / and **').description('find names across the point\'s filesystems'))
    .option('--limit <n>', 'at most this many results', '200')
    .option('--ignore-case', 'match case-insensitively')
    .action(async (glob: string, o: FilesOptions & { limit: string; ignoreCase?: boolean }) => {
      await withSession(o, async (s) => {
        const r = await s.find(glob, { ...(o.fs ? { filesystem: o.fs } : {}), limit: Number(o.limit), caseInsensitive: o.ignoreCase ?? false });
        if (o.json) printJson(r);
        else {
          for (const e of r.results) printLine(`${e.filesystem}:${e.path}\t${e.type}\t${e.size}`);
          if (r.truncated) process.stderr.write('olvm-backup: more names match than shown (raise --limit)\n');
        }
      });
    });
  common(files.command('get').argument('<path>', 'file or folder (escaped form)').description('write a file (as it is) or a folder (as .tar.gz) to --out'))
    .requiredOption('--out <file>', 'where to write (- for stdout)')
    .action(async (p: string, o: FilesOptions & { out: string }) => {
      await withSession(o, async (s) => {
        const at = { filesystem: pickFs(s, o.fs), path: await parsePath(p) };
        const st = await s.stat(at);
        const stream = st.type === 'directory' ? await s.archive(at) : (await s.read(at)).stream;
        const sink = o.out === '-' ? process.stdout : createWriteStream(o.out, { flags: 'wx' });
        try {
          await pipeline(stream, sink);
        } catch (err) {
          if (o.out !== '-') await fs.rm(o.out, { force: true });
          throw err;
        }
      });
    });
}

async function withSession(o: FilesOptions, work: (s: BrowseSession) => Promise<void>): Promise<void> {
  if (o.accel && !['auto', 'kvm', 'tcg'].includes(o.accel)) throw new AppError('INVALID_ARGUMENT', `--accel must be auto, kvm or tcg, not '${o.accel}'`);
  const [{ openRepository, cliActor }, restore] = await Promise.all([import('../repoOpen'), import('../../restore')]);
  const repository = await openRepository(o);
  let session: BrowseSession | undefined;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    // the session's appliance and lease go first; then the process ends as the signal asked
    void (async () => {
      await session?.close().catch(() => undefined);
      await repository.close().catch(() => undefined);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    session = await restore.BrowseSession.open({ repository, pointId: o.point, ...(o.disk ? { disks: o.disk } : {}), actor: cliActor(), accel: o.accel ?? 'auto', inspect: o.inspect ?? false });
    for (const sys of session.layout.systems) process.stderr.write(`olvm-backup: ${sys.root}: ${sys.type} ${sys.product}\n`);
    await work(session);
  } finally {
    await session?.close();
    await repository.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function pickFs(s: BrowseSession, wanted: string | undefined): string {
  if (wanted) return wanted;
  const mounted = s.layout.filesystems.filter((f) => f.mounted);
  if (mounted.length === 1) return (mounted[0] as { device: string }).device;
  throw new AppError('INVALID_ARGUMENT', `give --fs: the point has ${mounted.length} mounted filesystems (${s.layout.filesystems.map((f) => `${f.device} ${f.type}${f.mounted ? '' : ` (${f.error ?? 'not mounted'})`}`).join(', ')})`);
}

async function parsePath(p: string): Promise<Buffer> {
  const { parseDisplayName } = await import('../../restore');
  return parseDisplayName(p);
}

function entryLine(e: BrowseEntry): string {
  const when = new Date(e.mtimeMs).toISOString().replace(/\.\d+Z$/, 'Z');
  return `${e.type.padEnd(12)} ${e.mode.toString(8).padStart(4, '0')} ${String(e.size).padStart(12)} ${when} ${e.name}${e.target !== null ? ` -> ${e.target}` : ''}`;
}
